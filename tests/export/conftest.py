"""Checkpoints of freshly initialised tiny generators, in the trainer's own checkpoint format.

Parity does not need a trained model (the exported graph must compute the same function whatever the
weights), so these skip training; ``test_export.py`` also exports a checkpoint written by a real
one-step ``gesturegan train``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from train import checkpoint as ck
from train.models import ModelSpec, build_generator

from ..train.conftest import corpus_dir, tiny_cache  # noqa: F401 - the tiny corpus and cache fixtures, shared

CATEGORIES = ("trigger", "trigger_continuous", "continuous_variation", "continuous_repetition")


def write_checkpoint(path: Path, seed: int = 0, step: int = 7, corrupt=None, **spec_kw) -> ModelSpec:
    """A ``ckpt``-format file holding a random-init generator built from ``ModelSpec(**spec_kw)``."""
    kw = dict(architecture="wavegan", categories=CATEGORIES, sample_rate=16000, n_samples=16384, model_dim=4)
    kw.update(spec_kw)
    spec = ModelSpec(**kw)
    torch.manual_seed(seed)
    gen = build_generator(spec)
    if getattr(gen, "oscillators", None) is not None:  # zero-initialised (silent): give the bank something to export
        with torch.no_grad():
            gen.oscillators.head.weight.normal_(0.0, 0.05)
            if gen.noise_level is not None:
                gen.noise_level.weight.normal_(0.0, 0.05)
    stats = None
    if spec.architecture == "specgan":  # plausible per-bin log-magnitude statistics
        bins = int(spec.view)
        rng = np.random.default_rng(seed)
        stats = [(np.linspace(-3, -8, bins) + 0.3 * rng.standard_normal(bins)).astype(np.float32).tolist(),
                 (1.5 + 0.3 * rng.random(bins)).astype(np.float32).tolist()]
    weights = gen.state_dict()
    if corrupt is not None:
        corrupt(weights)
    state = ck.new_state(spec=spec.to_json(), generator=weights, step=step, spectral_stats=stats,
                         dataset={"cache": "tiny", "clips": 24, "counts": {c: 6 for c in spec.categories}, "content_hash": "0" * 64})
    path.parent.mkdir(parents=True, exist_ok=True)
    ck.save_atomic(state, path)
    return spec


@pytest.fixture
def checkpoint(tmp_path):
    def _make(name: str = "ckpt-00000007.pt", **spec_kw) -> Path:
        p = tmp_path / "run" / name
        write_checkpoint(p, **spec_kw)
        return p

    return _make
