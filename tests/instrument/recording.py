"""A recording engine for control-surface tests: a real :class:`~instrument.engine.Engine` (table, model,
presets, rendering when a test asks) that also keeps every command posted to it, in order, with the
sample it was asked for (None: as soon as possible). Surfaces are tested by what they produce, through
the engine's public ``post``, not by reaching into its queue."""

from __future__ import annotations

from instrument.commands import Command
from instrument.engine import Engine


class RecordingEngine(Engine):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.posted: list[tuple[Command, int | None]] = []

    def post(self, command: Command, at: int | None = None) -> None:
        super().post(command, at)
        self.posted.append((command, at))

    def drain(self) -> list[tuple[Command, int | None]]:
        """The commands posted since the last drain."""
        out, self.posted = self.posted, []
        return out
