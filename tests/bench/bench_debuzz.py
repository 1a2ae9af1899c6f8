"""The notch comb's cost (train/debuzz.py): the comb alone as a dilated convolution (the peer) against the
running sums it is computed with, and a bundled-size generator exported with and without it, all in
onnxruntime with the engine's session options, in the same run.

    python tests/bench/bench_debuzz.py                # about a minute on 2 cores
    python tests/bench/bench_debuzz.py --json out.json

Each figure is the median wall time of ``--runs`` calls after 20 untimed ones; the two generators are
called alternately, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from export.onnx_export import export_model  # noqa: E402
from instrument.model import default_threads, load_model, session_options  # noqa: E402
from tests.export.conftest import write_checkpoint  # noqa: E402
from train.debuzz import PERIOD, Debuzz, comb_weights  # noqa: E402

BUNDLED = dict(architecture="wavegan", model_dim=16, upsample="balanced", conditioning="film", envelope=True, oscillators=128)


class DilatedComb(torch.nn.Module):
    """The same filter with the comb as one ``M``-tap convolution dilated by the period (the peer)."""

    def __init__(self, periods: int, n_samples: int) -> None:
        super().__init__()
        self.ref = Debuzz(periods, n_samples)
        comb = torch.tensor(comb_weights(periods), dtype=torch.float32).view(1, 1, -1)
        self.register_buffer("comb", comb)
        self.register_buffer("inside", F.conv1d(F.pad(torch.ones(1, 1, n_samples), (self.ref.pad,) * 2), comb, dilation=PERIOD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = F.conv1d(F.pad(x, (self.ref.pad, self.ref.pad)), self.comb, dilation=PERIOD) / self.inside
        c_ext = torch.cat([c[..., PERIOD // 2:PERIOD], c, c[..., -PERIOD:-PERIOD // 2]], dim=-1)
        return x - c + F.conv1d(c_ext, self.ref.box)


def _session(module: torch.nn.Module, n: int, threads: int):
    import onnxruntime as ort

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, 1, n), buf, input_names=["x"], output_names=["y"], opset_version=17,
                          dynamo=False, dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    return ort.InferenceSession(buf.getvalue(), session_options(threads), providers=["CPUExecutionProvider"])


def _median_ms(calls: dict, runs: int) -> dict:
    for fn in calls.values():
        for _ in range(20):
            fn()
    times = {k: [] for k in calls}
    for _ in range(runs):
        for k, fn in calls.items():  # alternately
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: {"median_ms": round(float(np.median(v)), 3), "p90_ms": round(float(np.percentile(v, 90)), 3)} for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, default=129)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the engine's)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    threads = a.threads or default_threads()
    n = 16384
    out: dict = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
                 "threads": threads, "periods": a.periods, "runs": a.runs}
    rng = np.random.default_rng(0)
    for batch in (1, 8):
        x = rng.standard_normal((batch, 1, n)).astype(np.float32)
        dilated, running = _session(DilatedComb(a.periods, n), n, threads), _session(Debuzz(a.periods, n), n, threads)
        diff = float(np.abs(dilated.run(None, {"x": x})[0] - running.run(None, {"x": x})[0]).max())
        t = _median_ms({"dilated": lambda: dilated.run(None, {"x": x}), "running sums": lambda: running.run(None, {"x": x})}, a.runs)
        ratio = round(t["dilated"]["median_ms"] / t["running sums"]["median_ms"], 2)
        out[f"comb, batch {batch}"] = {**t, "max_difference": diff, "ratio": ratio}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "g.pt"
        write_checkpoint(ckpt, **BUNDLED)
        export_model(ckpt, Path(tmp) / "plain.onnx", seed=0, half=True, threads=threads)
        export_model(ckpt, Path(tmp) / "combed.onnx", seed=0, half=True, threads=threads, debuzz=a.periods)
        with load_model(Path(tmp) / "plain.onnx", provider="cpu", threads=threads) as plain, \
                load_model(Path(tmp) / "combed.onnx", provider="cpu", threads=threads) as combed:
            z = rng.uniform(-1, 1, (1, 100)).astype(np.float32)
            c = np.eye(4, dtype=np.float32)[:1]
            t = _median_ms({"without the comb": lambda: plain.generate(z, c), "with the comb": lambda: combed.generate(z, c)}, a.runs)
        out["bundled-size generator (random weights, fp16), batch 1"] = {
            **t, "ratio": round(t["with the comb"]["median_ms"] / t["without the comb"]["median_ms"], 3),
            "size_bytes": {"without": (Path(tmp) / "plain.onnx").stat().st_size, "with": (Path(tmp) / "combed.onnx").stat().st_size}}
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
