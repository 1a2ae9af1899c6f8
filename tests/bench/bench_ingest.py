"""Ingest benchmark: build a cache from N one-second clips and compare with the research pipeline.

    python tests/bench/bench_ingest.py                 # 20,000 clips (DESIGN.md's target: <= 60 s on 2 cores)
    python tests/bench/bench_ingest.py --clips 2000    # a quick look

Generates the clips once into bench-data/ (44.1 kHz, 16-bit, stereo WAVs spread over the four
category folders, so every clip is decoded, mixed down, resampled to 16 kHz, sliced and cached). It
then times:

1. the full build (all cores);
2. a no-op rebuild (nothing changed: only the manifest and a copy of the clips);
3. the peer, in the same run: the composer's pipeline, ``librosa.load(path, sr=16000)`` file by file
   in one process, on a subset (after one untimed warm-up call), extrapolated to N.

Files are read from the page cache (they were just written, or read by an earlier run). Pass --cold
to drop the page cache before each timing (root only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from train.build import build_cache  # noqa: E402
from train.ingest import DEFAULT_CATEGORIES  # noqa: E402


def generate(root: Path, n: int, rate: int, seconds: float) -> None:
    marker = root / f".complete-{n}-{rate}-{seconds}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    frames = int(rate * seconds)
    t = np.arange(frames) / rate
    bank = []
    for k in range(64):  # distinct material; files cycle through it with a per-file gain
        f0 = 60 * 2 ** (k / 8)
        x = 0.4 * np.sin(2 * np.pi * f0 * t) * np.exp(-t * (k % 7)) + 0.05 * rng.standard_normal(frames)
        bank.append(np.stack([x, np.roll(x, 17)], axis=1))
    from tqdm import tqdm

    for i in tqdm(range(n), desc="generate", unit="file"):
        cat = DEFAULT_CATEGORIES[i % 4]
        p = root / cat / f"{i // 1000:03d}" / f"clip{i:06d}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, (bank[i % 64] * (0.5 + 0.5 * ((i * 7919) % 100) / 100)).astype(np.float32), rate, subtype="PCM_16")
    marker.touch()


def drop_caches() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as e:
        print(f"note: could not drop the page cache ({e}); timings are warm", file=sys.stderr)


def librosa_peer(files: list[Path]) -> float:
    import librosa

    librosa.load(files[-1], sr=16000, mono=True)  # warm-up: numba JIT and imports are not per-file costs
    t0 = time.perf_counter()
    for p in files:
        y, _ = librosa.load(p, sr=16000, mono=True)
        clip = np.zeros(16384, np.float32)
        clip[: min(len(y), 16384)] = y[:16384]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--peer-files", type=int, default=400, help="files the librosa peer decodes (extrapolated)")
    ap.add_argument("--data", type=Path, default=Path("bench-data"))
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()

    root, cache = args.data / f"clips-{args.clips}", args.data / f"cache-{args.clips}"
    generate(root, args.clips, args.rate, args.seconds)
    shutil.rmtree(cache, ignore_errors=True)

    if args.cold:
        drop_caches()
    t0 = time.perf_counter()
    report = build_cache(root, cache)
    full = time.perf_counter() - t0

    t0 = time.perf_counter()
    again = build_cache(root, cache, progress=False)
    noop = time.perf_counter() - t0
    assert again.files_processed == 0

    files = sorted(root.rglob("*.wav"))[: args.peer_files]
    if args.cold:
        drop_caches()
    peer = librosa_peer(files) * args.clips / len(files)

    result = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "clips": args.clips,
        "source": f"{args.rate} Hz 16-bit stereo WAV, {args.seconds} s each",
        "page_cache": "cold" if args.cold else "warm",
        "build_seconds": round(full, 2),
        "clips_per_second": round(report.n_clips / full, 1),
        "noop_rebuild_seconds": round(noop, 2),
        "librosa_serial_seconds_extrapolated": round(peer, 1),
        "speedup_vs_librosa": round(peer / full, 1),
        "cache_bytes": sum(p.stat().st_size for p in cache.iterdir()),
    }
    print(json.dumps(result, indent=1))
    print(f"\ningest of {args.clips} clips: {full:.1f} s ({result['clips_per_second']} clips/s), "
          f"{result['speedup_vs_librosa']}x faster than serial librosa.load in the same run; target <= 60 s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
