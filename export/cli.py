"""The ``gesturegan`` command. Each package registers its own subcommands; this module only composes
them, and lives in ``export`` because that is the one package allowed to import both others
(DESIGN.md: instrument never imports train or export). Heavy imports (torch, onnx) happen inside the
subcommands that need them, so ``gesturegan --help`` and the dataset tools work without PyTorch.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

import train.cli
import instrument.cli
import instrument.inspect
from instrument.audio import AudioDeviceError
from instrument.errors import ModelFileError, ProviderError
from instrument.midi import MidiError
from instrument.midimap import MidiMapError
from instrument.osc import OscConfigError
from instrument.params import ParamError
from instrument.presets import PresetError
from instrument.render import ScriptError
from instrument.score import ScoreError
from train.errors import CheckpointError, DatasetError, ModelError, TrainingError

from . import commands, demo

USER_ERRORS: tuple[type[BaseException], ...] = (
    DatasetError, ModelError, CheckpointError, TrainingError, ModelFileError, ProviderError, AudioDeviceError, ParamError,
    OscConfigError, MidiError, MidiMapError, PresetError, ScoreError, ScriptError, FileNotFoundError, NotADirectoryError, PermissionError,
)


def package_version() -> str:
    try:
        return version("gesturegan")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
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
    demo.register(sub)
    train.cli.register(sub)
    commands.register(sub)
    instrument.inspect.register(sub)
    instrument.cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        print(f"gesturegan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gesturegan: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
