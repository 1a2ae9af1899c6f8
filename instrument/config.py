"""The engine's settings (:class:`EngineConfig`), checked when made; :mod:`instrument.engine` and
:mod:`instrument.mixer` both take it (import it from :mod:`instrument.engine`)."""

from __future__ import annotations

from dataclasses import dataclass

from .realtime import ENGINE_RT_PRIORITY


@dataclass(frozen=True)
class EngineConfig:
    """The engine's settings: rate, block, channels, how far ahead it works, its seed, where the model
    runs, the live thread's real-time priority (:mod:`instrument.realtime`) and which real-time core
    (:mod:`instrument.core`). Checked when made."""

    sample_rate: int = 48000
    block_frames: int = 128
    channels: int = 2
    buffer_blocks: int = 3  # how far ahead of the audio the engine works: renders (python core), applies timed commands (c core)
    seed: int = 0  # trigger variations and layer drift are drawn from this
    provider: str = "auto"
    threads: int | None = None
    max_batch: int = 8
    rt_priority: int = ENGINE_RT_PRIORITY  # the live engine thread's SCHED_FIFO priority where allowed; 0: none (a raised nice instead)
    core: str = "auto"  # the real-time core: "c" (compiled; in the audio callback), "python" (numpy), "auto": c where it builds

    def __post_init__(self) -> None:
        if self.core not in ("auto", "c", "python"):
            raise ValueError(f"core must be auto, c or python, got {self.core!r}")
        self._check_ranges()

    def _check_ranges(self) -> None:
        for name, lo, hi, unit in (("sample_rate", 8000, 384000, " Hz"), ("block_frames", 1, 8192, ""), ("channels", 1, 64, ""),
                                   ("buffer_blocks", 1, 64, ""), ("rt_priority", 0, 98, "")):
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} must be between {lo}{' (off)' if name == 'rt_priority' else ''} and {hi}{unit}, "
                                 f"got {getattr(self, name)}")
