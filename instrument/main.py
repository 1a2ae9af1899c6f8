"""The ``gesturegan`` command root.

The instrument's own subcommands (``demo``, ``inspect``, ``devices``, ``play``, ``render``,
``midi-ports``) are registered here; they need nothing but this package. The researcher's (``dataset``,
``train``, ``classifier``, ``evaluate``, ``export``) come from the packages that declare them in
pyproject.toml's ``gesturegan.commands`` entry-point group, one entry a top-level command, each naming a
:class:`Command`. So this package imports neither train nor export, ``gesturegan play`` loads no
plugin at all, and an install without the ``[train]`` extra (no PyTorch) lists only what it can run and
says in the help what the extra adds; asking for one of those commands anyway gets that one line.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, entry_points, version

from . import cli, demo, inspect
from .audio import AudioDeviceError
from .ccore import CoreBuildError
from .errors import MissingExtraError, ModelFileError, ProviderError
from .midiports import MidiError
from .midimap import MidiMapError
from .osc import OscConfigError
from .params import ParamError
from .presets import PresetError
from .render import ScriptError
from .score import ScoreError

ENTRY_POINTS = "gesturegan.commands"

USER_ERRORS: tuple[type[BaseException], ...] = (
    ModelFileError, ProviderError, AudioDeviceError, ParamError, OscConfigError, MidiError, MidiMapError, PresetError, ScoreError,
    ScriptError, CoreBuildError, FileNotFoundError, NotADirectoryError, PermissionError,
)


@dataclass(frozen=True)
class Command:
    """What an entry point in the ``gesturegan.commands`` group names.

    ``register(sub)`` adds the subcommand (and only it: the entry point's name) to the root's subparsers;
    the help lists them by ``order``.
    ``needs``: modules it imports when run that an install may lack; while one is missing the command is
    left out of the help and answers with one line naming ``extra``. ``errors``: its user-facing
    exception types, reported as ``gesturegan: error: ...`` with exit status 2 instead of a traceback."""

    register: Callable[[argparse._SubParsersAction], None]
    needs: tuple[str, ...] = ()
    errors: tuple[type[BaseException], ...] = ()
    extra: str = "train"
    order: int = 100  # where the help lists it after the instrument's own (the researcher's workflow order)

    def missing(self) -> list[str]:
        return [m for m in self.needs if importlib.util.find_spec(m) is None]


def package_version() -> str:
    try:
        return version("gesturegan")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _own(sub: argparse._SubParsersAction) -> None:
    demo.register(sub)
    inspect.register(sub)
    cli.register(sub)


OWN_COMMANDS = frozenset(("demo", "inspect", "devices", "play", "render", "midi-ports"))


def plugin_commands(only: str | None = None) -> list[tuple[str, Command | str]]:
    """The installed packages' commands (name, Command), by their ``order``; ``only``: just that one (so
    a command loads no other package). A plugin that fails to load comes as (name, why): the
    instrument's own commands must not depend on a broken research install."""
    found: list[tuple[str, Command | str]] = []
    for ep in entry_points(group=ENTRY_POINTS):
        if only is not None and ep.name != only:
            continue
        try:
            command = ep.load()
        except Exception as e:  # noqa: BLE001 - whatever a broken package raises, it is reported, not fatal
            found.append((ep.name, f"cannot be loaded ({ep.value}: {type(e).__name__}: {e})"))
            continue
        if not isinstance(command, Command):
            found.append((ep.name, f"cannot be loaded ({ep.value} is not an instrument.main.Command)"))
            continue
        found.append((ep.name, command))
    return sorted(found, key=lambda nc: (nc[1].order if isinstance(nc[1], Command) else 1000, nc[0]))


def _unavailable(message: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise MissingExtraError(message)
    return run


def hidden_command(sub: argparse._SubParsersAction, name: str, message: str) -> None:
    """``name`` left out of the help list (no ``help=``); run, it answers ``message`` in one line."""
    p = sub.add_parser(name, add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_unavailable(message))


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, tuple[type[BaseException], ...]]:
    """The parser and the user-error types of every command it knows. ``command``: the one about to run
    (its plugin alone is loaded; none for the instrument's own commands); None: all of them, for help."""
    p = argparse.ArgumentParser(
        prog="gesturegan",
        description=(
            "GestureGAN: a neural instrument that generates sound gestures (trigger, trigger continuous, "
            "continuous variation, continuous repetition) and morphs between them."
        ),
        epilog=(
            "Start with 'gesturegan demo'. Researchers: 'gesturegan dataset synth' makes the built-in "
            "corpus, 'gesturegan dataset build ROOT --out CACHE' turns your own recordings (ROOT/<category>/*.wav) "
            "into training data, 'gesturegan train CACHE --out RUN' trains a generator on it, 'gesturegan export RUN -o model.onnx' "
            "makes the instrument's model file and 'gesturegan inspect model.onnx' shows it. Every command has --help."
        ),
    )
    p.add_argument("--version", action="version", version=f"gesturegan {package_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _own(sub)
    errors = USER_ERRORS + (MissingExtraError,)
    if command in OWN_COMMANDS:
        return p, errors
    lacking: dict[str, list[str]] = {}
    broken = []
    for name, cmd in plugin_commands(None if command is None else command):
        if isinstance(cmd, str):
            broken.append(name)
            hidden_command(sub, name, f"'gesturegan {name}' {cmd}")
            continue
        missing = cmd.missing()
        if missing:
            lacking.setdefault(cmd.extra, []).append(name)
            hidden_command(sub, name, f"'gesturegan {name}' needs {', '.join(missing)}, which this install lacks: "
                               f"pip install 'gesturegan[{cmd.extra}]'")
        else:
            cmd.register(sub)
        errors += cmd.errors
    if broken:
        p.epilog += f" Installed but broken (run one to see why): {', '.join(broken)}."
    if lacking:
        p.epilog += "".join(f" With the [{extra}] extra (pip install 'gesturegan[{extra}]'): {', '.join(names)}."
                            for extra, names in lacking.items())
    return p, errors


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    known = first in OWN_COMMANDS or any(ep.name == first for ep in entry_points(group=ENTRY_POINTS))
    parser, errors = build_parser(first if known else None)  # help, or a mistyped command: every choice listed
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except errors as e:
        print(f"gesturegan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gesturegan: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
