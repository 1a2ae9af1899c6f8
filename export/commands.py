"""``gesturegan export``: a trained checkpoint -> one ONNX model file (see :mod:`export.onnx_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from instrument.main import Command
from train.config import DEBUZZ_HELP, WEIGHTS, WEIGHTS_HELP
from train.errors import CheckpointError, ModelError

from .onnx_export import ExportError, export_model


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "export",
        help="turn a trained checkpoint into one ONNX model file for the instrument, checked against PyTorch",
        description=(
            "Export a checkpoint (or a run folder: its best.pt, else its newest checkpoint) to one ONNX file that keeps "
            "the model contract: z [batch, latent_dim] and category [batch, n_categories] in, audio [batch, n_samples] out. "
            "The file is written only if onnxruntime reproduces PyTorch within the parity bounds."
        ),
    )
    e.add_argument("checkpoint", type=Path, help="a checkpoint file (ckpt-*.pt, best.pt) or a run folder")
    e.add_argument("-o", "--out", type=Path, default=None, help="output .onnx file (default: model.onnx in the run folder)")
    e.add_argument("--half", action="store_true",
                   help="store the generator's weights as fp16 (half the file; computed in float32; the accuracy cost is reported)")
    e.add_argument("--griffin-lim-iters", type=int, default=None,
                   help="SpecGAN: Griffin-Lim iterations unrolled in the graph (default 32: spectral convergence 0.06, about "
                        "0.45 ms per clip per iteration on a CPU core)")
    e.add_argument("--force", action="store_true", help="write the file even if parity fails (flagged parity_forced=true in its metadata)")
    e.add_argument("--seed", type=int, default=None, help="seed of the parity check's latents (default: fresh, printed)")
    e.add_argument("--weights", choices=WEIGHTS, default="auto", help=WEIGHTS_HELP)
    e.add_argument("--debuzz", type=int, default=None, metavar="PERIODS", help=DEBUZZ_HELP)
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = args.out
    if out is None:
        folder = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
        out = folder / "model.onnx"
    if out.suffix.lower() != ".onnx":
        out = out.with_name(out.name + ".onnx") if out.suffix == "" else out
    report = export_model(args.checkpoint, out, half=args.half, griffin_lim_iters=args.griffin_lim_iters, force=args.force, seed=args.seed,
                           weights=args.weights, debuzz=args.debuzz)
    print(report.summary())
    if report.forced:
        print("WARNING: parity FAILED and the file was written anyway (--force); it is flagged parity_forced=true")
    print(f"wrote {report.path} in {report.seconds:.1f} s; try it: gesturegan inspect {report.path}")
    return 0


# what pyproject.toml's gesturegan.commands entry point "export" names
EXPORT = Command(register, order=50, needs=("torch", "onnx"), errors=(ExportError, ModelError, CheckpointError))
