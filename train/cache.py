"""The dataset cache: clips as one memory-mapped float32 array plus a JSON manifest.

Layout of a cache folder::

    CACHE/manifest.json          what is in the cache (the only file a reader trusts)
    CACHE/clips-<hash12>.f32     clips, row-major float32 [n_clips, clip_samples], little-endian
    CACHE/filesums-<hash12>.npy  per source file, its clips' spectrogram sums (for incremental rebuilds)

The manifest is the commit point. A build writes ``clips-*.f32.partial``, fsyncs it, renames it,
then atomically replaces ``manifest.json``; only after that is the previous data file deleted. A
build killed at any moment therefore leaves either the old cache or the new one, never a
half-written file that a reader would accept: readers open only the data file the manifest names
and check its size (and, with ``verify=True``, its SHA-256).

Manifest fields (format version 1): ``format``, ``version``, ``created``, ``settings`` (everything
that shaped the clips) and ``settings_hash``, ``sample_rate``, ``clip_samples``, ``categories``,
``n_clips``, ``data_file``, ``file_sums``, ``data_hash``, ``content_hash``, ``spectral`` (per-bin mean/std for the 128 and 64
views), ``clips`` (per clip, as columns: ``file`` index, ``offset`` in samples at ``sample_rate``,
``category`` index), ``files`` (per source file: path relative to the dataset root, size, mtime,
category, status, first clip and clip count, or the reason it was skipped), ``report``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instrument.files import write_atomic

from .errors import CacheError
from .spectral import downsample_2x2, log_magnitude, normalise

CACHE_FORMAT = "gesturegan-dataset-cache"
CACHE_VERSION = 1
MANIFEST = "manifest.json"


def write_json_atomic(path: Path, obj: dict) -> None:
    write_atomic(path, json.dumps(obj, separators=(",", ":")), unique=True)


def read_manifest(cache_dir: str | os.PathLike) -> dict:
    path = Path(cache_dir) / MANIFEST
    if not Path(cache_dir).is_dir():
        raise CacheError(f"dataset cache {str(cache_dir)!r} does not exist; build one with 'gesturegan dataset build ROOT --out {cache_dir}'")
    if not path.is_file():
        raise CacheError(f"{str(cache_dir)!r} holds no {MANIFEST}: not a dataset cache, or its first build did not finish")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise CacheError(f"{path} is unreadable: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise CacheError(f"{path} is not a GestureGAN dataset cache manifest")
    version = manifest.get("version")
    if version != CACHE_VERSION:
        raise CacheError(
            f"{path} has cache format version {version!r}; this GestureGAN reads version {CACHE_VERSION} only. "
            "Rebuild the cache with 'gesturegan dataset build'."
        )
    return manifest


def hash_file(path: Path, chunk_bytes: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class DatasetCache:
    """A built cache, opened for reading. Use as a context manager, or call :meth:`close`.

    ``clips : [n_clips, clip_samples]`` float32 memmap, values in [-1, 1];
    ``category_index : [n_clips]`` int, index into ``categories``.
    """

    path: Path
    manifest: dict
    clips: np.ndarray
    category_index: np.ndarray
    file_index: np.ndarray
    offsets: np.ndarray

    @classmethod
    def open(cls, cache_dir: str | os.PathLike, verify: bool = False) -> "DatasetCache":
        path = Path(cache_dir)
        m = read_manifest(path)
        data = path / m["data_file"]
        n, length = int(m["n_clips"]), int(m["clip_samples"])
        expected = n * length * 4
        if not data.is_file():
            raise CacheError(f"{data} named by the manifest is missing; rebuild the cache")
        actual = data.stat().st_size
        if actual != expected:
            raise CacheError(f"{data} is {actual} bytes, the manifest says {n} clips x {length} samples = {expected} bytes; rebuild the cache")
        if verify and hash_file(data) != m["data_hash"]:
            raise CacheError(f"{data} does not match the SHA-256 in the manifest: the data was changed after the build")
        clips = np.memmap(data, dtype="<f4", mode="r", shape=(n, length)) if n else np.zeros((0, length), np.float32)
        cols = m["clips"]
        return cls(
            path=path,
            manifest=m,
            clips=clips,
            category_index=np.asarray(cols["category"], dtype=np.int64),
            file_index=np.asarray(cols["file"], dtype=np.int64),
            offsets=np.asarray(cols["offset"], dtype=np.int64),
        )

    def __enter__(self) -> "DatasetCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the memory map. Idempotent."""
        mm = getattr(self.clips, "_mmap", None)
        self.clips = np.zeros((0, self.clip_samples), np.float32)
        if mm is not None:
            try:
                mm.close()
            except (BufferError, ValueError):
                pass  # a view of the map is still alive elsewhere; it is freed with that view

    def __len__(self) -> int:
        return int(self.manifest["n_clips"])

    @property
    def sample_rate(self) -> int:
        return int(self.manifest["sample_rate"])

    @property
    def clip_samples(self) -> int:
        return int(self.manifest["clip_samples"])

    @property
    def categories(self) -> list[str]:
        return list(self.manifest["categories"])

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])

    def source(self, clip: int) -> tuple[str, int]:
        """(source path relative to the dataset root, offset in samples at ``sample_rate``)."""
        return self.manifest["files"][int(self.file_index[clip])]["path"], int(self.offsets[clip])

    def counts(self) -> dict[str, int]:
        """Clips per category, in category order."""
        c = np.bincount(self.category_index, minlength=len(self.categories))
        return {name: int(c[i]) for i, name in enumerate(self.categories)}

    def spectral_stats(self, view: str = "128") -> tuple[np.ndarray, np.ndarray]:
        """Per-frequency-bin (mean, std) of the log-magnitude view ``"128"`` or ``"64"``: each ``[F]``."""
        if view not in ("128", "64"):
            raise ValueError(f"spectrogram view must be '128' or '64', got {view!r}")
        s = self.manifest["spectral"][view]
        return np.asarray(s["mean"], dtype=np.float32), np.asarray(s["std"], dtype=np.float32)

    def spectrograms(self, index: np.ndarray | slice, view: str = "128") -> np.ndarray:
        """Normalised SpecGAN images of the chosen clips: ``[B, F, N]`` in [-1, 1]."""
        lm = log_magnitude(np.asarray(self.clips[index]))
        if view == "64":
            lm = downsample_2x2(lm)
        mean, std = self.spectral_stats(view)
        return normalise(lm, mean, std)
