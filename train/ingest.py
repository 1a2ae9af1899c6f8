"""Reading recordings for ``gesturegan dataset build``: what one file becomes, and the folder's files.

Steps per file (:func:`process_file`, in worker processes): decode with libsndfile, mix to mono,
resample with soxr, cut clips (grid or onset-aligned), drop clips under the level threshold, optionally
peak-normalise, and sum the spectrogram statistics. :func:`scan` finds a dataset folder's categories
and files; :class:`Decoder` runs :func:`process_file` over them in worker processes, results in order.

Building the cache from the results (incrementally, named by content) is :mod:`train.build`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from . import slicing
from .audio_io import AUDIO_EXTENSIONS, RESAMPLE_QUALITIES, DecodeError, read_mono
from .errors import DatasetError
from .spectral import BinSums

#: The composer's four gesture categories, in the order a model's category vector uses them.
DEFAULT_CATEGORIES = ("trigger", "trigger_continuous", "continuous_variation", "continuous_repetition")
ALIGN_MODES = ("grid", "onset")
NORMALIZE_MODES = ("none", "file", "clip")


@dataclass(frozen=True)
class IngestSettings:
    """Everything that shapes the clips. Saved in the manifest; a change forces a full rebuild."""

    sample_rate: int = 16000
    clip_samples: int = 16384
    hop_samples: int | None = None  # None = clip_samples (no overlap)
    pad_end: bool = True
    align: str = "grid"
    onset: slicing.OnsetSettings = field(default_factory=slicing.OnsetSettings)
    min_level_dbfs: float = -60.0
    level_mode: str = "peak"
    normalize: str = "none"
    resample_quality: str = "HQ"

    def __post_init__(self) -> None:
        try:
            slicing.check_clip_samples(self.clip_samples)
        except ValueError as e:
            raise DatasetError(str(e)) from None
        if not isinstance(self.sample_rate, int) or not 4000 <= self.sample_rate <= 192000:
            raise DatasetError(f"sample_rate must be an integer in 4000..192000 Hz, got {self.sample_rate!r}")
        if self.hop_samples is not None and not 1 <= self.hop_samples <= self.clip_samples:
            raise DatasetError(f"hop_samples must be in 1..clip_samples ({self.clip_samples}), got {self.hop_samples!r}")
        for name, value, allowed in (
            ("align", self.align, ALIGN_MODES),
            ("level_mode", self.level_mode, slicing.LEVEL_MODES),
            ("normalize", self.normalize, NORMALIZE_MODES),
            ("resample_quality", self.resample_quality, RESAMPLE_QUALITIES),
        ):
            if value not in allowed:
                raise DatasetError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not -200.0 <= self.min_level_dbfs <= 0.0:
            raise DatasetError(f"min_level_dbfs must be in -200..0 dBFS, got {self.min_level_dbfs!r}")

    @property
    def hop(self) -> int:
        return self.hop_samples or self.clip_samples

    def to_json(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


@dataclass
class FileResult:
    """What a worker sends back for one source file."""

    index: int
    clips: np.ndarray | None = None  # [n, clip_samples] float32
    offsets: np.ndarray | None = None  # [n] int64, at the target rate
    sums: BinSums | None = None
    info: dict = field(default_factory=dict)
    error: str | None = None  # the report reason, e.g. "truncated"
    detail: str = ""


def process_file(path: str, index: int, settings: IngestSettings) -> FileResult:
    """Decode and cut one file. Never raises for a bad file: the reason goes into the result."""
    try:
        audio = read_mono(path, settings.sample_rate, settings.resample_quality)
    except DecodeError as e:
        return FileResult(index, error=e.reason, detail=e.detail)
    except Exception as e:  # a decoder bug must not stop a 20,000-file build; it is reported per file
        return FileResult(index, error="decoder error", detail=f"{type(e).__name__}: {e}")
    x = audio.samples
    peak = float(np.max(np.abs(x)))
    if settings.normalize == "file" and peak > 0:
        x = x / np.float32(peak)
    if settings.align == "onset":
        starts = slicing.onset_starts(x, settings.sample_rate, settings.onset)
    else:
        starts = slicing.grid_starts(x.shape[0], settings.clip_samples, settings.hop, settings.pad_end)
    clips = slicing.take_clips(x, starts, settings.clip_samples)
    levels = slicing.clip_levels_dbfs(clips, settings.level_mode)
    keep = levels >= settings.min_level_dbfs
    clips, starts = clips[keep], starts[keep]
    if settings.normalize == "clip" and len(clips):
        clips /= np.max(np.abs(clips), axis=1, keepdims=True)
    info = {
        "source_sample_rate": audio.source_sample_rate,
        "channels": audio.source_channels,
        "subtype": audio.source_subtype,
        "seconds": round(audio.samples.shape[0] / settings.sample_rate, 4),
        "candidates": int(len(keep)),
        "below_threshold": int((~keep).sum()),
    }
    if audio.gain != 1.0:
        info["scaled_by"] = audio.gain
    return FileResult(index, clips=clips, offsets=starts.astype(np.int64), sums=BinSums.of_clips(clips), info=info)


def _worker(task: tuple[str, int, IngestSettings]) -> FileResult:
    return process_file(*task)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tears the pool down
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the dataset root, with '/' separators
    category: str
    size: int
    mtime_ns: int


def find_categories(root: Path, wanted: list[str] | None = None) -> list[str]:
    """Category names in model order: ``wanted`` as given, else the folders under ``root`` (the four
    default gesture categories first, in their canonical order, then any others alphabetically)."""
    if not root.exists():
        raise DatasetError(f"dataset root {str(root)!r} does not exist")
    if not root.is_dir():
        raise DatasetError(f"dataset root {str(root)!r} is not a folder; expected ROOT/<category>/**/*.wav")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if wanted:
        missing = [c for c in wanted if c not in folders]
        if missing:
            raise DatasetError(f"category folder(s) {', '.join(missing)} not found under {root}; found: {', '.join(folders) or 'none'}")
        if len(set(wanted)) != len(wanted):
            raise DatasetError(f"categories must be distinct, got {', '.join(wanted)}")
        return list(wanted)
    if not folders:
        raise DatasetError(f"dataset root {str(root)!r} has no category folders; expected ROOT/<category>/**/*.wav")
    known = [c for c in DEFAULT_CATEGORIES if c in folders]
    return known + [c for c in folders if c not in DEFAULT_CATEGORIES]


def scan(root: Path, categories: list[str]) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """Audio files per category (sorted) and the non-audio files found beside them."""
    files: list[SourceFile] = []
    ignored: list[tuple[str, str]] = []
    for cat in categories:
        found = 0
        seen: set[str] = set()  # real paths walked: a symlinked folder is followed once, a cycle not at all
        for dirpath, dirnames, filenames in os.walk(root / cat, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                rel = full.relative_to(root).as_posix()
                if name.startswith(".") and not name.lower().endswith(AUDIO_EXTENSIONS):
                    continue  # .DS_Store and friends are not user data
                if not name.lower().endswith(AUDIO_EXTENSIONS):
                    ignored.append((rel, "not an audio file extension"))
                    continue
                try:
                    st = full.stat()
                    size, mtime = st.st_size, st.st_mtime_ns
                except OSError:
                    size, mtime = -1, -1  # a broken link: process_file reports it as unreadable
                files.append(SourceFile(rel, cat, size, mtime))
                found += 1
        if found == 0:
            raise DatasetError(
                f"category folder {str(root / cat)!r} contains no audio files "
                f"({', '.join(e.lstrip('.') for e in AUDIO_EXTENSIONS)}); add recordings or remove the folder"
            )
    return files, ignored


class Decoder:
    """Context manager yielding FileResults for ``todo`` in order, from worker processes or in-process.

    A worker that dies (out of memory, a crashing decoder) raises BrokenProcessPool here instead of
    hanging the build, which is why this is a ProcessPoolExecutor and not multiprocessing.Pool.
    """

    def __init__(self, root: Path, files: list[SourceFile], todo: list[int], settings: IngestSettings, jobs: int | None):
        self.tasks = [(str(root / files[i].path), i, settings) for i in todo]
        self.jobs = max(1, min(jobs or cpu_count(), len(self.tasks) or 1))
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Iterator[FileResult]:
        if self.jobs == 1 or len(self.tasks) < 8:
            return map(_worker, self.tasks)
        # forkserver: safe even when the parent has threads (torch, tqdm) running.
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        self.pool = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_worker_init)
        chunk = max(1, min(32, len(self.tasks) // (self.jobs * 8)))
        return self.pool.map(_worker, self.tasks, chunksize=chunk)

    def __exit__(self, exc_type, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=exc_type is not None)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
