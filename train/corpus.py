"""The built-in gesture corpus: procedural, seeded recordings of the four gesture categories.

``gesturegan dataset synth --out DIR --per-category N --seed S`` writes ``DIR/<category>/*.wav`` like a
user's own recordings, plus ``DIR/corpus.json`` naming the recipe and parameters of every file.
Every file has its own random generator seeded by (seed, category, index), so a file's content does
not depend on how many others are made or in which order. The sounds themselves, and what makes each
true to its category, are :mod:`train.gestures`.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from instrument.files import write_atomic

from .errors import DatasetError
from .gestures import RECIPES
from .ingest import DEFAULT_CATEGORIES

__all__ = ["RECIPES", "synth_one", "write_corpus"]  # RECIPES lives in train.gestures


# ----------------------------------------------------------------------------- the corpus


def synth_one(category: str, index: int, seed: int, sample_rate: int, n_samples: int) -> tuple[np.ndarray, dict]:
    """One corpus file: ``audio : [n_samples]`` float32 with peak in [0.25, 0.9], and its recipe."""
    if category not in RECIPES:
        raise DatasetError(f"category must be one of {', '.join(RECIPES)}, got {category!r}")
    rng = np.random.default_rng([seed, DEFAULT_CATEGORIES.index(category), index])
    recipes = RECIPES[category]
    recipe = recipes[int(rng.integers(0, len(recipes)))]
    x, params = recipe(rng, n_samples, sample_rate)
    x = np.asarray(x, dtype=np.float64)
    x -= x.mean() * (category != "trigger")  # no DC offset in sustained sounds
    peak = np.abs(x).max()
    gain = rng.uniform(0.25, 0.9) / peak if peak > 0 else 0.0
    params = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in params.items()}
    return (x * gain).astype(np.float32), {"recipe": recipe.__name__, **params}


def _write_one(task: tuple[str, int, int, int, int, str, str]) -> dict:
    category, index, seed, sr, n, out, subtype = task
    audio, recipe = synth_one(category, index, seed, sr, n)
    rel = f"{category}/{category}_{index:05d}.wav"
    sf.write(os.path.join(out, rel), audio, sr, subtype=subtype)
    return {"path": rel, "category": category, **recipe}


def write_corpus(
    out: str | os.PathLike,
    per_category: int = 64,
    seed: int = 0,
    sample_rate: int = 16000,
    seconds: float = 16384 / 16000,
    categories: tuple[str, ...] = DEFAULT_CATEGORIES,
    subtype: str = "PCM_16",
    jobs: int = 1,
    progress: bool = True,
) -> dict:
    """Write the corpus; returns (and saves as ``corpus.json``) its description."""
    if per_category < 1:
        raise DatasetError(f"per_category must be at least 1, got {per_category}")
    if not 0.05 <= seconds <= 60:
        raise DatasetError(f"seconds must be in 0.05..60, got {seconds}")
    if not 8000 <= sample_rate <= 192000:
        raise DatasetError(f"sample_rate must be in 8000..192000 Hz, got {sample_rate}")
    if subtype not in ("PCM_16", "PCM_24", "PCM_32", "FLOAT"):
        raise DatasetError(f"subtype must be one of PCM_16, PCM_24, PCM_32, FLOAT, got {subtype!r}")
    for c in categories:
        if c not in RECIPES:
            raise DatasetError(f"category must be one of {', '.join(RECIPES)}, got {c!r}")
    out = Path(out)
    n = int(round(seconds * sample_rate))
    for c in categories:
        (out / c).mkdir(parents=True, exist_ok=True)
    tasks = [(c, i, seed, sample_rate, n, str(out), subtype) for c in categories for i in range(per_category)]

    with tqdm(total=len(tasks), unit="file", desc="synth", disable=not progress, dynamic_ncols=True) as bar:
        if jobs > 1 and len(tasks) >= 64:
            with ProcessPoolExecutor(jobs) as pool:
                files = []
                for rec in pool.map(_write_one, tasks, chunksize=16):
                    files.append(rec)
                    bar.update(1)
        else:
            files = []
            for t in tasks:
                files.append(_write_one(t))
                bar.update(1)
    desc = {
        "generator": "gesturegan built-in gesture corpus",
        "version": 1,
        "seed": seed,
        "sample_rate": sample_rate,
        "n_samples": n,
        "per_category": per_category,
        "categories": list(categories),
        "subtype": subtype,
        "files": files,
    }
    write_atomic(out / "corpus.json", json.dumps(desc, indent=1))
    return desc
