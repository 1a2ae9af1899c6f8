"""Offline rendering of scores: real-time factor with the bundled default model.

    python tests/bench/bench_render.py
    python tests/bench/bench_render.py --model other.onnx --json out.json

1. **The demo piece** (``presets/scores/demo.toml``, 154 s with its tail), as ``gesturegan demo``
   renders it: 1024-frame blocks, to a 24-bit WAV.
2. **A 3-minute score** (DESIGN.md's case): 4 triggers a second over the four categories, the layer
   on. "cached": variation 0 and the controls still, so each category's clip is generated once and
   re-played (the mixer's own speed); "varied": variation 0.3 and a macro ramp over the whole piece, so
   every trigger is a new clip and the layer regenerates twice a second (generation-bound).

Peer, in the same run: the same render at the engine's live block size (128 frames), which is what the
block size buys. Each figure is the best of ``--repeats`` renders (the machine's noise is one-sided).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def three_minutes(variation: float, block: int, model: str):
    from instrument.score import Score

    s = Score(title="bench", model=model, time="seconds", duration=180, tail=0, seed=1, block=block)
    s.at(0).set(variation=variation, layer_rate=2.0).layer(True)
    if variation > 0:  # the latent moves too: the layer regenerates and no trigger repeats a clip
        s.at(0).ramp("macro1", to=1.0, over=180, start=-1.0)
    cats = ["trigger", "trigger_continuous", "continuous_variation", "continuous_repetition"]
    for k in range(180 * 4):
        s.at(k / 4).trigger(cats[k % 4], velocity=0.5 + 0.4 * ((k * 7) % 5) / 4)
    return s


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="a model file (default: the bundled one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import onnxruntime as ort

    from instrument.files import shipped
    from instrument.render import render_score
    from instrument.score import load_score, resolve_model

    demo = load_score(shipped("scores", "demo.toml"))
    model = str(resolve_model(demo, None if args.model == "default" else args.model))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime {ort.__version__}")
    print(f"model: {model} ({Path(model).stat().st_size / 1e6:.1f} MB)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("demo piece", demo, 1024), ("demo piece", demo, 128)]
        for variation, name in ((0.0, "3 min, cached"), (0.3, "3 min, varied")):
            for block in (1024, 128):
                cases.append((name, three_minutes(variation, block, model), block))
        for name, score, block in cases:
            score.block = block
            out = Path(tmp) / "out.wav"
            seconds = score.length_seconds() + score.tail
            summary = {}

            def run():
                summary.update(render_score(score, out, model=model))

            dt = timed(run, args.repeats)
            key = f"{name}, {block}"
            results[key] = {"audio_s": seconds, "render_s": dt, "rtf": seconds / dt, "clips_generated": summary["clips_generated"]}
            print(f"{name:15s} block {block:5d}: {seconds:6.1f} s of audio in {dt:5.2f} s = {seconds / dt:6.0f}x real time "
                  f"({summary['clips_generated']} clips generated)", flush=True)
    for name in ("demo piece", "3 min, cached", "3 min, varied"):
        a, b = results[f"{name}, 1024"], results[f"{name}, 128"]
        print(f"{name}: 1024-frame blocks are {b['render_s'] / a['render_s']:.1f}x faster than 128-frame blocks")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
