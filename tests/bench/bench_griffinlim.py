"""Griffin-Lim: iterations vs quality vs time, ours (PyTorch, DFT convolutions, exportable) against
librosa.griffinlim (the composer's tool) on the same magnitudes, in the same run.

    python tests/bench/bench_griffinlim.py            # 16 clips of the built-in corpus, 16384 samples at 16 kHz

Quality is spectral convergence ``|| |STFT(y)| - M ||_F / ||M||_F`` of the reconstruction ``y`` against
the target magnitude ``M`` (0 = the magnitude is matched exactly; the phase is free). Both start from
random phase and use momentum 0.99. Times are the best of 3 for the whole batch, after warm-up calls.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from train.corpus import write_corpus  # noqa: E402
from train.spectral import HOP, N_BINS, N_FFT  # noqa: E402
from train.stft import DFTConv, GriffinLim, spectral_convergence  # noqa: E402

ITERS = (0, 4, 8, 16, 32, 64, 100)
REPEATS = 3  # best of


def clips(n_per_cat: int = 4) -> np.ndarray:
    import soundfile as sf

    root = REPO / "bench-data" / "gl-corpus"
    if not root.exists():
        write_corpus(root, per_category=n_per_cat, seed=5, progress=False)
    return np.stack([sf.read(p, dtype="float32")[0][:16384] for p in sorted(root.rglob("*.wav"))])


def main() -> None:
    import librosa

    x = torch.from_numpy(clips())
    dft = DFTConv()
    re, im = dft.stft(x)
    mag = torch.sqrt(re**2 + im**2)[:, :N_BINS]  # [B, 128, 128]: the SpecGAN magnitude (Nyquist dropped)
    mag_np = np.pad(mag.numpy(), ((0, 0), (0, 1), (0, 0)))  # librosa wants all 129 bins
    n_lib = (mag_np.shape[-1] - 1) * HOP + N_FFT  # librosa frames without end padding: (128 - 1) * hop + n_fft samples
    librosa.griffinlim(mag_np[:1], n_iter=2, hop_length=HOP, n_fft=N_FFT, center=False, length=n_lib)  # warm-up (numba, FFT plans)
    rows = []
    for n in ITERS:
        gl = GriffinLim(x.shape[1], n)
        gl(mag[:1])  # warm-up
        t_ours = float("inf")
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            y = gl(mag)
            t_ours = min(t_ours, time.perf_counter() - t0)
        sc_ours = float(spectral_convergence(dft, y, mag).mean())
        t_lib, yl = float("inf"), None
        for _ in range(REPEATS if n else 0):
            t0 = time.perf_counter()
            yl = librosa.griffinlim(mag_np, n_iter=n, hop_length=HOP, n_fft=N_FFT, window="hann", center=False,
                                    length=n_lib, momentum=0.99, init="random", random_state=0)
            t_lib = min(t_lib, time.perf_counter() - t0)
        if n:
            ml = np.abs(librosa.stft(yl, n_fft=N_FFT, hop_length=HOP, window="hann", center=False))[:, :N_BINS]
            sc_lib = float(np.mean(np.linalg.norm(ml - mag.numpy(), axis=(1, 2)) / np.linalg.norm(mag.numpy(), axis=(1, 2))))
        else:
            sc_lib = float("nan")
        rows.append((n, sc_ours, t_ours, sc_lib, t_lib))
        print(f"{n:4d} iters: ours SC {sc_ours:.3f} in {t_ours * 1000:7.1f} ms; librosa SC {sc_lib:.3f} in {t_lib * 1000:7.1f} ms", flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"librosa {librosa.__version__}; {len(x)} clips of {x.shape[1]} samples\n")
    print("| iterations | spectral convergence (ours) | time (ours) | spectral convergence (librosa) | time (librosa) | ours vs librosa time |")
    print("|---|---|---|---|---|---|")
    for n, sc, t, scl, tl in rows:
        ratio = f"{tl / t:.1f}x faster" if n else "-"
        print(f"| {n} | {sc:.3f} | {t * 1000:.0f} ms | {scl:.3f} | {tl * 1000:.0f} ms | {ratio} |" if n else
              f"| 0 (random phase) | {sc:.3f} | {t * 1000:.1f} ms | - | - | - |")


if __name__ == "__main__":
    main()
