"""Training speed: generator steps per second (each = n_critic critic steps + 1 generator step), batch 64.

    python tests/bench/bench_train.py                       # CPU or GPU, whichever PyTorch picks
    python tests/bench/bench_train.py --quick               # batch 16, d=16: a smoke run
    python tests/bench/bench_train.py --variants eager,bf16,compile,bf16+compile   # on a GPU
    python tests/bench/bench_train.py --recipes paper,laptop --configs none          # the recipes, each at its own settings

Every configuration is timed in the same process on the same synthetic corpus (built once into
bench-data/train-corpus), after untimed warm-up steps (compile and cuDNN autotuning happen there).
Figures are reported as ratios to the first configuration measured (WaveGAN d=64, eager fp32).
Also times one generator forward pass per WaveGAN upsampling mode (batch 64), the inference cost the
instrument pays.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from train.build import build_cache  # noqa: E402
from train.config import resolve_config  # noqa: E402
from train.corpus import write_corpus  # noqa: E402
from train.ingest import IngestSettings  # noqa: E402
from train.metrics import periodic_artefact_db  # noqa: E402
from train.models import ModelSpec, build_generator  # noqa: E402
from train.trainer import Trainer  # noqa: E402


def cache_dir() -> Path:
    data = REPO / "bench-data" / "train-corpus"
    cache = REPO / "bench-data" / "train-cache"
    if not (cache / "manifest.json").exists():
        write_corpus(data, per_category=64, seed=0, progress=False)
        build_cache(data, cache, IngestSettings(), jobs=None, min_clips=1, progress=False)
    return cache


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(cache: Path, name: str, extra: dict, batch: int | None, steps: int, warmup: int, out: Path, recipe: str = "paper") -> dict:
    if batch is not None:
        extra = {**extra, "batch_size": batch}
    cfg = resolve_config(str(cache), str(out / name), recipe, steps=10**9, preview_every=0, progress=False, **extra)
    trainer = Trainer(cfg, log=lambda *a: None)
    try:
        for _ in range(warmup):
            trainer._one_step()
        sync(trainer.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer._one_step()
        sync(trainer.device)
        dt = time.perf_counter() - t0
        return {"config": name, "steps_per_second": steps / dt, "seconds_per_step": dt / steps, "device": str(trainer.device),
                "bf16": trainer.bf16, "compile": cfg.compile, "batch": cfg.batch_size, "n_critic": cfg.n_critic}
    finally:
        trainer.close()


@torch.no_grad()
def time_upsampling(d: int, batch: int, device: torch.device, repeats: int) -> list[dict]:
    rows = []
    for mode in ("transpose", "nearest", "subpixel", "smooth"):
        g = build_generator(ModelSpec("wavegan", ("a", "b", "c", "d"), 16000, 16384, model_dim=d, upsample=mode)).to(device).eval()
        z = torch.rand(batch, 100, device=device) * 2 - 1
        c = torch.eye(4, device=device)[torch.arange(batch) % 4]
        g(z, c)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            g(z, c)
        sync(device)
        rows.append({"mode": mode, "ms_per_batch": (time.perf_counter() - t0) / repeats * 1000,
                     "periodic_artefact_db": periodic_artefact_db(g(z, c).float().cpu().numpy())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3, help="timed generator steps per configuration (default 3)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--variants", default="eager", help="comma list of eager, bf16, compile, bf16+compile (GPU)")
    ap.add_argument("--configs", default="wavegan-d64,wavegan-d32,specgan-d64", help="comma list of ARCH-dN[-MODE], or none")
    ap.add_argument("--recipes", default="", help="also time these recipes at their own settings (d, batch, critics), e.g. paper,laptop")
    ap.add_argument("--quick", action="store_true", help="batch 16, d=16: checks the script, not the speed")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()
    if args.quick:
        args.batch_size, args.configs = 16, "wavegan-d16,specgan-d16"
    cache = cache_dir()
    out = REPO / "bench-data" / "train-runs"
    results, failed = [], []
    for recipe in filter(None, args.recipes.split(",")):
        extra = {"model_dim": 16, "batch_size": 16} if recipe == "paper" else {}  # paper at the old default model's CPU size
        r = time_training(cache, f"recipe-{recipe}", extra, None, args.steps, args.warmup, out, recipe)
        results.append(r)
        print(f"recipe {recipe:<25} {r['steps_per_second']:8.3f} steps/s  ({r['seconds_per_step']:.2f} s/step, batch {r['batch']}, "
              f"{r['n_critic']} critic steps)", flush=True)
    for cfg_name in filter(lambda c: c != "none", args.configs.split(",")):
        parts = cfg_name.split("-")
        extra = {"arch": parts[0], "model_dim": int(parts[1][1:])}
        if len(parts) > 2:
            extra["upsample"] = parts[2]
        for variant in args.variants.split(","):
            v = {"bf16": "on" if "bf16" in variant else "off", "compile": "compile" in variant}
            name = f"{cfg_name}-{variant}"
            try:
                r = time_training(cache, name, {**extra, **v}, args.batch_size, args.steps, args.warmup, out)
            except Exception as e:  # noqa: BLE001 -- a variant this PyTorch cannot run (torch.compile) is a row, not the end of the run
                failed.append({"config": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
                print(f"{name:<32} failed: {failed[-1]['error']}", flush=True)
                continue
            results.append(r)
            print(f"{name:<32} {r['steps_per_second']:8.3f} steps/s  ({r['seconds_per_step']:.2f} s/step)", flush=True)
    if not results:
        raise SystemExit("every configuration failed: " + "; ".join(f"{f['config']}: {f['error']}" for f in failed))
    base = results[0]["steps_per_second"]
    device = torch.device(results[0]["device"])
    first = [c for c in args.configs.split(",") if c != "none"]
    ups_d = int(first[0].split("-")[1][1:]) if first else 16
    ups = time_upsampling(ups_d, args.batch_size, device, 3 if device.type == "cpu" else 20)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if device.type == "cuda":
        machine += f", {torch.cuda.get_device_name(device)}"
    print(f"\nmachine: {machine}\n")
    print("| configuration | batch | critic steps | steps/s | s/step | vs first |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['batch']} | {r['n_critic']} | {r['steps_per_second']:.3f} | {r['seconds_per_step']:.2f} | "
              f"{r['steps_per_second'] / base:.2f}x |")
    for f in failed:
        print(f"| {f['config']} | - | - | failed: {f['error']} | | |")
    print("\n| WaveGAN upsampling | generator forward, batch %d | vs transpose | periodic artefact at init |\n|---|---|---|---|" % args.batch_size)
    for u in ups:
        print(f"| {u['mode']} | {u['ms_per_batch']:.1f} ms | {u['ms_per_batch'] / ups[0]['ms_per_batch']:.2f}x | "
              f"{u['periodic_artefact_db']:+.1f} dB |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "batch": args.batch_size, "training": results, "failed": failed, "upsampling": ups}, indent=1))


if __name__ == "__main__":
    main()
