"""Numbers that say how good generated sounds are.

``spectral_distance_db``: cheap, classifier-free, computed at every checkpoint to pick the best one: per
category, the per-frequency-bin mean and standard deviation of the log-magnitude spectrogram of
generated clips against real clips of that category, as mean absolute differences in dB, averaged.
0 dB means the generator's average spectrum and its variation match the data per category.

``inception_score`` and ``nearest_neighbour`` are used by ``gesturegan evaluate`` with the gesture
classifier (``train.classifier``).
"""

from __future__ import annotations

import numpy as np

from .spectral import log_magnitude

DB_PER_NEPER = 20.0 / np.log(10.0)


def spectral_profile(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``clips : [B, T]`` -> per-bin (mean, std) of log magnitude in dB over clips and frames, each ``[128]``."""
    lm = log_magnitude(clips) * DB_PER_NEPER  # [B, 128, N]
    lm = np.maximum(lm, -120.0)  # silence is -120 dB, not -inf-like -120.0 from log(1e-6)
    return lm.mean(axis=(0, 2)), lm.std(axis=(0, 2))


def spectral_distance_db(generated: dict[int, np.ndarray], reference: dict[int, tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean over categories of ``mean|mu_gen - mu_real| + mean|sd_gen - sd_real|`` (dB)."""
    d = []
    for k, clips in generated.items():
        mu, sd = spectral_profile(clips)
        rmu, rsd = reference[k]
        d.append(float(np.abs(mu - rmu).mean() + np.abs(sd - rsd).mean()))
    return float(np.mean(d)) if d else float("nan")


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` for ``probs : [N, n_classes]``; 1 (one class, or uniform guesses) to
    n_classes (confident and evenly spread)."""
    probs = np.asarray(probs, dtype=np.float64)
    marginal = probs.mean(axis=0, keepdims=True)
    kl = (probs * (np.log(probs + eps) - np.log(marginal + eps))).sum(axis=1)
    return float(np.exp(kl.mean()))


def nearest_neighbour_distances(queries: np.ndarray, bank: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Euclidean distance from each row of ``queries : [N, D]`` to its nearest row of ``bank : [M, D]``."""
    q = np.asarray(queries, np.float64)
    b = np.asarray(bank, np.float64)
    b2 = (b * b).sum(axis=1)
    out = np.empty(len(q))
    for i in range(0, len(q), chunk):
        qq = q[i : i + chunk]
        d2 = (qq * qq).sum(axis=1)[:, None] - 2 * qq @ b.T + b2[None, :]
        out[i : i + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance between distinct rows of ``x : [N, D]`` (0 for N < 2): how spread a set of
    clips is in an embedding. A generator that makes one clip whatever the latent scores 0."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if n < 2:
        return 0.0
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] - 2 * x @ x.T + sq[None, :], 0.0)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean())


def periodic_artefact_db(audio: np.ndarray, sample_rate: int = 16000, period_hz: float = 1000.0) -> float:
    """How much louder the spectrum is at multiples of ``period_hz`` (fs/16: the strides of the last two
    layers put checkerboard tones at fs/4 and fs/16 multiples) than in the bins around them, in dB,
    averaged over those multiples: ~0 dB means no tonal pattern. Measured at initialisation, where
    the pattern comes from the architecture alone (Odena et al., "Deconvolution and checkerboard
    artifacts", 2016)."""
    power = (np.abs(np.fft.rfft(audio * np.hanning(audio.shape[1]), axis=1)) ** 2).mean(axis=0)
    bin_hz = sample_rate / audio.shape[1]
    ratios = []
    for f in np.arange(period_hz, sample_rate / 2, period_hz):
        k = int(round(f / bin_hz))
        peak = power[k - 1 : k + 2].max()
        around = np.median(np.concatenate([power[k - 40 : k - 5], power[k + 5 : k + 40]]))
        ratios.append(10 * np.log10(peak / around))
    return float(np.mean(ratios))
