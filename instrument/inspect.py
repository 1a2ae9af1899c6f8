"""``gesturegan inspect model.onnx``: what a model file is, whether the engine accepts it, and how fast
it generates here. Needs no PyTorch (a performer's machine has none)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .contract import OPTIONAL_KEYS, REQUIRED_KEYS, read_header
from .errors import ModelFileError, ProviderError
from .model import PROVIDERS, GeneratorModel, cuda_status, load_model_bytes, read_model_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="show a model file's metadata, inputs and outputs, and time one generation on each provider",
        description="Read an exported model, check it against the model contract, and time batch generation "
                    "(median of --runs after a warm-up) on the CPU and, where it works, CUDA.",
    )
    p.add_argument("model", type=Path, help="an .onnx file written by 'gesturegan export'")
    p.add_argument("--provider", choices=("all",) + PROVIDERS, default="all",
                   help="where to time it: all (CPU, and CUDA when it works; the default), auto, cpu or cuda")
    p.add_argument("--runs", type=int, default=20, help="timed generations per provider (default 20)")
    p.add_argument("--batch", type=int, default=1, help="clips per generation (default 1)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: half the cores)")
    p.set_defaults(func=run)


def time_generation(model: GeneratorModel, batch: int, runs: int, rng: np.random.Generator) -> list[float]:
    """Seconds per ``generate`` call for ``runs`` calls on fresh latents and random category mixtures."""
    times = []
    for _ in range(runs):
        z = model.info.sample_latents(batch, rng)
        cat = rng.dirichlet(np.ones(model.info.n_categories), size=batch).astype(np.float32)
        t0 = time.perf_counter()
        model.generate(z, cat)
        times.append(time.perf_counter() - t0)
    return times


def _short(value: str, limit: int = 100) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def run(args: argparse.Namespace) -> int:
    path: Path = args.model
    if args.runs < 1 or args.batch < 1:
        raise ModelFileError(f"--runs and --batch must be >= 1, got {args.runs} and {args.batch}")
    data = read_model_file(path)
    header = read_header(data, str(path))
    opsets = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(header.opsets.items()))
    print(f"{path}: {len(data) / 1e6:.2f} MB, ONNX IR version {header.ir_version}, opset {opsets}, "
          f"produced by {header.producer or 'unknown'}")
    providers = {"all": ["cpu", "cuda"]}.get(args.provider, [args.provider])
    first = load_model_bytes(data, str(path), provider=providers[0], threads=args.threads)  # validates the contract
    i = first.info
    print(f"model contract version {i.contract_version}: {i.architecture}, {i.n_samples} samples at {i.sample_rate} Hz "
          f"({i.duration_seconds:.3f} s), latent {i.latent_dim} ({i.latent_distribution}), precision {i.precision}")
    print(f"categories ({i.n_categories}): {', '.join(i.categories)}")
    print(f"trained {i.training_steps} steps; dataset: {_short(json.dumps(i.dataset, sort_keys=True), 160)}; created {i.created}")
    if "parity_rel_error" in i.extra:
        forced = "  ** written with --force: parity FAILED **" if i.parity_forced else ""
        print(f"export parity: {i.extra['parity_rel_error']} ({i.extra.get('parity_metric', '?')}) "
              f"<= {i.extra.get('parity_bound', '?')}{forced}")
    inputs, outputs = first.signature()
    for kind, specs in (("input ", inputs), ("output", outputs)):
        for t in specs:
            print(f"{kind}  {t.describe()}")
    others = {k: v for k, v in header.metadata.items() if k not in REQUIRED_KEYS and k not in OPTIONAL_KEYS}
    if others:
        print("other metadata: " + "; ".join(f"{k}={_short(v, 60)}" for k, v in sorted(others.items())))
    print(f"timing, batch {args.batch}, median of {args.runs} after warm-up:")
    rng = np.random.default_rng(0)
    for name in providers:
        if args.provider == "all" and name == "cuda":
            usable, why = cuda_status()
            if not usable:
                print(f"  cuda  not available: {why}")
                continue
        try:
            model = first if name == providers[0] else load_model_bytes(data, str(path), provider=name, threads=args.threads)
        except ProviderError as e:
            if args.provider != "all":
                raise
            print(f"  {name:<5} not available: {e}")
            continue
        with model:
            times = np.array(time_generation(model, args.batch, args.runs, rng))
            med = float(np.median(times))
            rtf = args.batch * i.duration_seconds / med
            note = f" ({model.provider_note})" if model.provider_note else ""
            print(f"  {model.provider:<5} {med * 1e3:8.2f} ms (p90 {np.percentile(times, 90) * 1e3:.2f} ms), "
                  f"{rtf:,.0f}x real time, {model.threads} thread(s){note}")
    return 0
