"""Checkpoints: versioned, written atomically, the last K kept plus the best-scoring one.

A checkpoint is one ``torch.save`` file ``ckpt-<step>.pt`` in the run folder holding the format tag and
version, the :class:`~train.models.ModelSpec`, the training config, both networks, both optimisers, the
step, the RNG states, the dataset summary and the spectral statistics (SpecGAN). It is written to a
hidden temporary file in the same folder, fsynced, then renamed over its final name, so a kill at any
moment leaves either the old set of checkpoints or the new one, never a half file under a real name.
Stray temporaries from a killed write are removed when the run resumes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from instrument.files import atomic_file

from .config import WEIGHTS, TrainConfig
from .errors import CheckpointError, CheckpointVersionError
from .models import ModelSpec, Synthesizer, build_generator

FORMAT = "gesturegan-checkpoint"
KILL_ENV = "GESTUREGAN_TEST_KILL_IN_CHECKPOINT"  # tests: kill the process half-way through this step's write
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8,})\.pt$")
BEST = "best.pt"


def checkpoint_name(step: int) -> str:
    return f"ckpt-{step:08d}.pt"


def save_atomic(state: dict, path: Path, before_rename: Callable[[Path], None] | None = None) -> None:
    """``torch.save`` to ``path`` via a temp file + fsync + rename. ``before_rename`` is a test hook."""
    with atomic_file(path, before_rename=before_rename) as f:
        torch.save(state, f)


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", fmt: str = FORMAT, version: int = VERSION,
         kind: str = "checkpoint") -> dict:
    """Read and check a saved ``kind`` (a checkpoint, or the classifier): the format tag ``fmt`` and a
    version no newer than ``version``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {kind} at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for truncated/garbled zip files
        raise CheckpointError(f"{path} is not a readable {kind} ({type(e).__name__}: {e}); it may have been cut short") from e
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise CheckpointError(f"{path} is not a GestureGAN {kind} (no '{fmt}' format tag)")
    found = state.get("version")
    if not isinstance(found, int) or found > version:
        raise CheckpointVersionError(f"{path} is {kind} format version {found}; this GestureGAN reads up to version {version}: "
                                     "upgrade GestureGAN to use it")
    return state


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``ckpt-*.pt`` in ``run_dir``, oldest first."""
    if not run_dir.is_dir():
        return []
    out = []
    for p in run_dir.iterdir():
        m = _NAME.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete ``.ckpt-*.pt.tmp`` / ``.best.pt.tmp`` left by a killed write; return what was removed."""
    gone = []
    if run_dir.is_dir():
        for p in run_dir.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def latest_loadable(run_dir: Path, map_location: str | torch.device = "cpu",
                    warn: Callable[[str], None] = print) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, skipping (and reporting) unreadable ones; None if there is none."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load(path, map_location)
        except CheckpointVersionError:
            raise
        except CheckpointError as e:
            warn(f"skipping {path.name}: {e}")
    return None


def prune(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (``best.pt`` is a separate file and stays)."""
    ckpts = list_checkpoints(run_dir)
    gone = []
    for _, p in ckpts[: max(0, len(ckpts) - keep)]:
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def copy_as_best(src: Path, run_dir: Path) -> Path:
    """Atomically make ``best.pt`` a copy of ``src``."""
    dst = run_dir / BEST
    with open(src, "rb") as f_src, atomic_file(dst) as f:
        shutil.copyfileobj(f_src, f)
    return dst


def new_state(**parts: Any) -> dict:
    return {"format": FORMAT, "version": VERSION, **parts}


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder: its ``best.pt``, else its newest checkpoint."""
    p = Path(path)
    if p.is_dir():
        if (p / BEST).is_file():
            return p / BEST
        ckpts = list_checkpoints(p)
        if not ckpts:
            raise FileNotFoundError(f"{p} holds no checkpoints (ckpt-*.pt or best.pt); train into it with 'gesturegan train CACHE --out {p}'")
        return ckpts[-1][1]
    return p


def generator_weights(state: dict, weights: str = "auto", where: str = "the checkpoint") -> tuple[dict, str]:
    """The generator's state dict to use and which it is: ``ema`` (the moving average of a run trained
    with ``--ema``), ``raw`` (the weights the optimiser moved), or ``auto`` (the average where there is one)."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    has_ema = state.get("generator_ema") is not None
    if weights == "ema" and not has_ema:
        raise CheckpointError(f"{where} holds no moving average of the generator (it was trained without --ema); use --weights raw or auto")
    if weights == "raw" or not has_ema:
        return state["generator"], "raw"
    return state["generator_ema"], "ema"


def load_synthesizer(path: str | os.PathLike, device: str | torch.device = "cpu", weights: str = "auto", debuzz: int | None = None):
    """``(Synthesizer, ModelSpec, state)`` from a checkpoint file or run folder, in eval mode. ``weights``:
    see :func:`generator_weights`; ``state["weights"]`` says which were loaded. ``debuzz``: the number of
    periods of WaveGAN's notch comb (:mod:`train.debuzz`; 0 takes it off), in place of the one the run
    was trained with (None: keep it). The comb has no weights, so any WaveGAN checkpoint takes one."""
    p = resolve(path)
    state = load(p, device)
    spec = ModelSpec.from_json(state["spec"])
    if debuzz is not None and debuzz != spec.debuzz:
        spec = replace(spec, debuzz=debuzz)  # ModelSpec refuses it on SpecGAN, with the reason
    gen = build_generator(spec)
    chosen, state["weights"] = generator_weights(state, weights, str(p))
    try:
        gen.load_state_dict(chosen)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: the generator weights do not fit {spec.describe()}: {str(e).splitlines()[0]}") from e
    stats = state.get("spectral_stats")
    synth = Synthesizer(spec, gen, None if stats is None else tuple(np.asarray(s, np.float32) for s in stats)).to(device).eval()
    return synth, spec, state


def check_resumable(path: Path, state: dict, config: TrainConfig, spec: ModelSpec) -> None:
    """Refuse (:class:`CheckpointError`, saying what differs and what to do) to resume ``state`` into a
    run of ``config`` that builds ``spec``: another model, another recipe, other categories or clips."""
    diffs = config.model_differences(TrainConfig.from_json(state["config"]))
    if diffs:
        raise CheckpointError(f"{path} is a different model ({'; '.join(diffs)}, as saved vs as asked now); "
                              f"train into a new --out folder, or repeat the options the run was started with")
    saved = ModelSpec.from_json(state["spec"])
    if saved.categories != spec.categories:
        raise CheckpointError(f"{path} was trained on categories {list(saved.categories)}, the cache {config.cache} has "
                              f"{list(spec.categories)}; use the original cache or a new --out folder")
    if (saved.sample_rate, saved.n_samples) != (spec.sample_rate, spec.n_samples):
        raise CheckpointError(f"{path} makes {saved.n_samples} samples at {saved.sample_rate} Hz, the cache has "
                              f"{spec.n_samples} at {spec.sample_rate} Hz; use a matching cache or a new --out folder")
    if replace(saved, griffin_lim_iters=spec.griffin_lim_iters) != spec:  # GL iterations change no weights
        raise CheckpointError(f"{path} has model spec {saved.describe()}, this run would build {spec.describe()}")


def kill_hook_for_tests(step: int) -> Callable[[Path], None] | None:
    """Tests set ``GESTUREGAN_TEST_KILL_IN_CHECKPOINT=<step>`` to SIGKILL the process half-way through
    writing that step's checkpoint (the temporary is cut in half first, like a write the kernel never
    finished); otherwise None, and :func:`save_atomic` runs no hook."""
    target = os.environ.get(KILL_ENV)
    if target is None or int(target) != step:
        return None

    def hook(tmp: Path) -> None:
        size = tmp.stat().st_size
        with open(tmp, "r+b") as f:
            f.truncate(size // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    return hook
