"""Generation speed: PyTorch eager against onnxruntime (the engine's own loader and session options),
for the same exported models, in the same run, on the same machine.

    python tests/bench/bench_export.py                # the full table (a few minutes on 2 cores)
    python tests/bench/bench_export.py --quick        # fewer models and runs, to look at the shape of it
    python tests/bench/bench_export.py --json out.json

For each model: export a freshly initialised generator with ``gesturegan export``'s code (parity
checked), then time batch 1 and batch 8 generations, median of ``--runs`` (>= 20) after ``--warmup``
untimed calls, each call on fresh latents and a random category mixture. PyTorch runs the same
``Synthesizer`` under ``torch.inference_mode()`` with as many threads as the ORT session gets
(``--threads``, default the engine's :func:`instrument.model.default_threads`). Real-time factor is
audio seconds generated per wall-clock second.

Two extra sections justify the loader's settings: intra-op threads 1 vs 2 at batch 1, and two sessions
running at once with intra-op spinning on vs off (the engine's hot-swap case).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from export.onnx_export import export_model  # noqa: E402
from instrument.model import default_threads, load_model, session_options  # noqa: E402
from tests.export.conftest import write_checkpoint  # noqa: E402
from train.checkpoint import load_synthesizer  # noqa: E402

MODELS = {  # name -> ModelSpec fields
    "WaveGAN d=64": dict(architecture="wavegan", model_dim=64),
    "WaveGAN d=32": dict(architecture="wavegan", model_dim=32),
    "WaveGAN d=16": dict(architecture="wavegan", model_dim=16),
    "WaveGAN d=8": dict(architecture="wavegan", model_dim=8),
    "SpecGAN d=64 128x128, GL 32": dict(architecture="specgan", model_dim=64, view="128"),
    "SpecGAN d=16 64x64, GL 32": dict(architecture="specgan", model_dim=16, view="64"),
}
QUICK = ("WaveGAN d=32", "WaveGAN d=8", "SpecGAN d=16 64x64, GL 32")


def median_ms(fn, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def inputs(batch: int, n_cat: int, rng: np.random.Generator):
    z = rng.uniform(-1, 1, (batch, 100)).astype(np.float32)
    return z, rng.dirichlet(np.ones(n_cat), size=batch).astype(np.float32)


def time_model(name: str, spec_kw: dict, folder: Path, runs: int, warmup: int, threads: int) -> list[dict]:
    ckpt = folder / f"{name.split(',')[0].replace(' ', '_').replace('=', '')}.pt"
    write_checkpoint(ckpt, **spec_kw)
    onnx_path = ckpt.with_suffix(".onnx")
    report = export_model(ckpt, onnx_path, seed=0, threads=threads)
    synth, spec, _ = load_synthesizer(ckpt)
    rows = []
    rng = np.random.default_rng(0)
    with load_model(onnx_path, provider="cpu", threads=threads) as model:
        for batch in (1, 8):
            def run_torch():
                z, c = inputs(batch, spec.n_categories, rng)
                with torch.inference_mode():
                    torch.clamp(synth(torch.from_numpy(z), torch.from_numpy(c)), -1, 1)

            def run_ort():
                model.generate(*inputs(batch, spec.n_categories, rng))

            t_torch = median_ms(run_torch, runs, warmup)
            t_ort = median_ms(run_ort, runs, warmup)
            audio_s = batch * spec.n_samples / spec.sample_rate
            rows.append(dict(model=name, batch=batch, torch_ms=t_torch, ort_ms=t_ort, ratio=t_ort / t_torch,
                             rtf_ort=audio_s / (t_ort / 1e3), rtf_torch=audio_s / (t_torch / 1e3),
                             size_mb=report.size_bytes / 1e6, params_m=sum(p.numel() for p in synth.generator.parameters()) / 1e6,
                             parity=report.worst))
            print(f"  {name:<30} batch {batch}: torch {t_torch:8.2f} ms, onnxruntime {t_ort:8.2f} ms, ratio {t_ort / t_torch:.2f}", flush=True)
    return rows


def thread_scaling(onnx_path: Path, runs: int, warmup: int) -> dict:
    rng = np.random.default_rng(1)
    out = {}
    for threads in (1, 2):
        with load_model(onnx_path, provider="cpu", threads=threads) as model:
            out[threads] = median_ms(lambda: model.generate(*inputs(1, model.info.n_categories, rng)), runs, warmup)
    return out


def two_sessions(onnx_path: Path, runs: int, spinning: bool, threads: int = 2) -> dict:
    """Two sessions generating at batch 1 at the same time (a hot-swap): median wall ms per call over
    both, and the CPU time the process burnt per call (spinning threads keep burning between calls,
    which is CPU the audio and control threads do not get)."""
    import onnxruntime as ort

    data = onnx_path.read_bytes()
    so = session_options(threads, allow_spinning=spinning)
    sessions = [ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]) for _ in range(2)]
    times: list[float] = []
    lock = threading.Lock()

    def work(sess, seed):
        rng = np.random.default_rng(seed)
        for i in range(runs + 3):
            z, c = inputs(1, 4, rng)
            t0 = time.perf_counter()
            sess.run(None, {"z": z, "category": c})
            if i >= 3:
                with lock:
                    times.append(time.perf_counter() - t0)
            time.sleep(0.002)  # the worker idles between requests, as in the engine

    ts = [threading.Thread(target=work, args=(s, k)) for k, s in enumerate(sessions)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    calls = 2 * (runs + 3)
    return {"wall_ms": float(np.median(times)) * 1e3, "cpu_ms_per_call": cpu / calls * 1e3, "cpu_load": cpu / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sections", default="models,threads,spin", help="any of models, threads, spin (comma-separated)")
    args = ap.parse_args()
    if args.runs < 20 and not args.quick:
        ap.error("--runs must be >= 20 for the recorded table")
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}; {args.threads} thread(s) each")
    sections = set(args.sections.split(","))
    names = QUICK if args.quick else tuple(MODELS)
    rows, scaling, spin = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "models" in sections:
            for name in names:
                rows += time_model(name, MODELS[name], folder, args.runs, args.warmup, args.threads)
        for d in (8, 32):  # the small and the mid-sized WaveGAN, exported here if the table did not
            path = folder / f"WaveGAN_d{d}.onnx"
            if not path.exists() and sections & {"threads", "spin"}:
                write_checkpoint(path.with_suffix(".pt"), model_dim=d)
                export_model(path.with_suffix(".pt"), path, seed=0)
        if "threads" in sections:
            scaling = {f"WaveGAN_d{d}": thread_scaling(folder / f"WaveGAN_d{d}.onnx", args.runs, args.warmup) for d in (8, 32)}
        if "spin" in sections:
            spin = {"off": two_sessions(folder / "WaveGAN_d32.onnx", args.runs, False),
                    "on": two_sessions(folder / "WaveGAN_d32.onnx", args.runs, True)}

    if rows:
        print("\n| model | parameters | file | batch | PyTorch eager | onnxruntime | ORT / PyTorch | real time (ORT) |")
        print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params_m']:.2f}M | {r['size_mb']:.1f} MB | {r['batch']} | {r['torch_ms']:.2f} ms | "
              f"{r['ort_ms']:.2f} ms | {r['ratio']:.2f} | {r['rtf_ort']:,.0f}x |")
    if scaling:
        print("\nintra-op threads, batch 1 (ms):", {k: {t: round(v, 2) for t, v in d.items()} for k, d in scaling.items()})
    if spin:
        print("two sessions at once, WaveGAN d=32, 2 threads each, batch 1, 2 ms between calls:")
        for k, v in spin.items():
            print(f"  spinning {k:<3}: {v['wall_ms']:.2f} ms per call, {v['cpu_ms_per_call']:.2f} ms CPU per call, "
                  f"process CPU load {v['cpu_load']:.2f} cores")
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, threads=args.threads, scaling=scaling, two_sessions=spin), indent=1))


if __name__ == "__main__":
    main()
