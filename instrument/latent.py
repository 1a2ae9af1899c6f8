"""Latent steering: turning the parameter values into the model's inputs.

- A **base latent** per ``seed``, drawn from the model's latent distribution.
- **Macros**: ``N_MACROS`` fixed directions (seeded by a constant, so macro 3 means the same move in
  every session and on every machine), orthonormal, scaled so a macro at +-1 moves the latent by about
  half its range.
- **Radius**: scales the latent toward the centre (0) or past it (2), then the result is kept inside
  the distribution's support (uniform latents are clipped to [-1, 1]).
- **Neighbours** for triggers: a seeded random step of size ``variation`` around the current latent.
- **Timbre** for MPE notes: a fixed direction of its own (orthogonal to the macros) that CC 74 at
  note-on moves a note's latent along.
- **Category mix**: normalised weights, the XY pad's bilinear blend of its four corner categories, or a
  path through the categories in order (neighbours crossfaded).
"""

from __future__ import annotations

import hashlib

import numpy as np

from .contract import ModelInfo
from .params import MIX_PATH, MIX_WEIGHTS, MIX_XY, N_MACROS, weight_id

MACRO_SEED = 0x6E57  # fixed forever: a macro is the same direction in every session
MACRO_SCALE = 0.5  # a macro at +-1 moves the latent by this fraction of sqrt(latent_dim) (its typical length)
TIMBRE_SEED = 0x7B1E  # fixed forever, as the macros': a note's timbre (MPE CC 74) is the same move everywhere


class LatentSpace:
    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        d = info.latent_dim
        g = np.random.default_rng(MACRO_SEED).standard_normal((d, max(N_MACROS, 1)))
        q, _ = np.linalg.qr(g)  # orthonormal columns (when latent_dim >= N_MACROS)
        k = min(N_MACROS, q.shape[1])
        self.directions = np.zeros((N_MACROS, d), np.float32)
        self.directions[:k] = (q[:, :k].T * MACRO_SCALE * np.sqrt(d)).astype(np.float32)
        # the timbre direction: its own seed (the macros' stay as they were), made orthogonal to the macros
        t = np.random.default_rng(TIMBRE_SEED).standard_normal(d)
        t -= q[:, :k] @ (q[:, :k].T @ t)
        self.timbre_direction = (t / (np.linalg.norm(t) or 1.0) * MACRO_SCALE * np.sqrt(d)).astype(np.float32)
        self._base: dict[int, np.ndarray] = {}

    def base(self, seed: int) -> np.ndarray:
        z = self._base.get(seed)
        if z is None:
            z = self.info.sample_latents(1, np.random.default_rng(seed))[0]
            if len(self._base) > 256:
                self._base.clear()
            self._base[seed] = z
        return z

    def clip_to_support(self, z: np.ndarray) -> np.ndarray:
        if self.info.latent_distribution == "uniform":
            return np.clip(z, -1.0, 1.0).astype(np.float32)
        return z.astype(np.float32)

    def latent(self, seed: int, macros: np.ndarray, radius: float, base: np.ndarray | None = None) -> np.ndarray:
        """``base`` (default: the seed's) moved by the macros, scaled by the radius, kept in the support."""
        z = (self.base(seed) if base is None else base) + macros.astype(np.float32) @ self.directions
        return self.clip_to_support(z * np.float32(radius))

    def timbre(self, z: np.ndarray, timbre: float) -> np.ndarray:
        """``z`` moved along the timbre direction by ``timbre`` (-1..1, as far as a macro at +-1), in the support."""
        if timbre == 0:
            return z
        return self.clip_to_support(z + np.float32(timbre) * self.timbre_direction)

    def neighbour(self, z: np.ndarray, variation: float, rng: np.random.Generator) -> np.ndarray:
        if variation <= 0:
            return z
        step = rng.standard_normal(z.shape).astype(np.float32) * np.float32(variation * MACRO_SCALE)
        return self.clip_to_support(z + step)


def category_mix(values: dict[str, float], categories: tuple[str, ...]) -> np.ndarray:
    """The category weights ``[n_categories]`` (summing to 1) the parameters ask for."""
    n = len(categories)
    mode = values.get("mix_mode", MIX_WEIGHTS)
    if mode == MIX_PATH:  # between neighbours along the category order
        pos = min(max(values.get("morph_path", 0.0), 0.0), 1.0) * (n - 1)
        i = min(int(pos), n - 2) if n > 1 else 0
        w = np.zeros(n, np.float64)
        if n == 1:
            w[0] = 1.0
        else:
            w[i], w[i + 1] = 1.0 - (pos - i), pos - i
    elif mode == MIX_XY:
        x, y = values["morph_x"], values["morph_y"]
        corners = ((1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y)
        w = np.zeros(n, np.float64)
        for i, c in enumerate(corners):
            w[i % n] += c
    else:
        w = np.array([values[weight_id(c)] for c in categories], np.float64)
    total = w.sum()
    if total <= 1e-9:
        w = np.full(n, 1.0 / n)
    else:
        w = w / total
    return w.astype(np.float32)


def one_hot(index: int, n: int) -> np.ndarray:
    w = np.zeros(n, np.float32)
    w[index] = 1.0
    return w


def clip_key(model_id: int, z: np.ndarray, mix: np.ndarray) -> bytes:
    """Cache key of the clip for ``(z, mix)`` from model ``model_id`` (mix rounded to 1e-4)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(model_id.to_bytes(4, "little"))
    h.update(np.ascontiguousarray(z, np.float32).tobytes())
    h.update(np.round(mix, 4).astype(np.float32).tobytes())
    return h.digest()
