"""``gesturegan dataset build``: a folder of recordings -> a dataset cache, in parallel, incrementally.

The files are read by :mod:`train.ingest` (one recording -> clips, in worker processes); this module
plans, streams and commits. The clips are written in a fixed order (category, then path), so the cache
and its content hash do not depend on the number of workers.

A rebuild reuses every file whose path, size and modification time are unchanged (clips are copied
from the old cache, nothing is decoded again); any change of settings rebuilds from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from instrument.files import atomic_file

from .cache import CACHE_FORMAT, CACHE_VERSION, MANIFEST, DatasetCache, read_manifest, write_json_atomic
from .errors import CacheError, DatasetError
from .ingest import Decoder, FileResult, IngestSettings, SourceFile, find_categories, scan
from .spectral import BinSums


@dataclass
class BuildReport:
    cache_dir: str
    n_clips: int
    categories: dict[str, int]
    files_total: int
    files_processed: int
    files_reused: int
    skipped: list[tuple[str, str, str]]  # (path, reason, detail)
    ignored: list[tuple[str, str]]
    below_threshold: int
    too_few: list[str]
    seconds: float
    rebuilt_from_scratch: bool
    content_hash: str
    scaled_files: int

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"dataset cache {self.cache_dir}: {self.n_clips} clips in {self.seconds:.1f} s "
            f"({self.files_processed} files decoded, {self.files_reused} reused"
            f"{', full rebuild' if self.rebuilt_from_scratch and self.files_reused == 0 and self.files_processed else ''})",
        ]
        for cat, n in self.categories.items():
            flag = "  <- too few clips" if cat in self.too_few else ""
            lines.append(f"  {cat:<24} {n:>7} clips{flag}")
        if self.below_threshold:
            lines.append(f"  {self.below_threshold} clips dropped below the level threshold")
        if self.scaled_files:
            lines.append(f"  {self.scaled_files} float files exceeded full scale and were scaled down (not clipped)")
        if self.skipped:
            reasons = Counter(r for _, r, _ in self.skipped)
            lines.append(f"  {len(self.skipped)} files skipped: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
            for path, reason, detail in self.skipped[:20]:
                lines.append(f"    {path}: {reason}{' (' + detail + ')' if detail else ''}")
            if len(self.skipped) > 20:
                lines.append(f"    ... and {len(self.skipped) - 20} more (see report in {MANIFEST})")
        if self.ignored:
            lines.append(f"  {len(self.ignored)} non-audio files ignored (e.g. {self.ignored[0][0]})")
        lines.append(f"  content hash {self.content_hash[:16]}")
        return "\n".join(lines)


def build_cache(
    root: str | os.PathLike,
    out: str | os.PathLike,
    settings: IngestSettings = IngestSettings(),
    categories: list[str] | None = None,
    jobs: int | None = None,
    min_clips: int = 32,
    progress: bool = True,
    on_file: Callable[[int], None] | None = None,
) -> BuildReport:
    """Build (or update) the cache at ``out`` from ``root``. See the module docstring.

    Raises :class:`DatasetError` for unusable input (missing root, empty category, a category with
    no clip left). Bad individual files are skipped and listed in the report, never fatal.
    The phases: find the files, plan which old clips can be kept (:func:`_plan`), stream every clip
    to a temporary data file (:class:`_Clips`), then name it by its content and commit the manifest
    (:func:`_commit`).
    """
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    cats = find_categories(root, categories)
    files, ignored = scan(root, cats)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)

    old = _reusable_manifest(out, settings, cats)
    plan = _plan(files, old)
    todo = [i for i, hit in enumerate(plan) if hit is None]
    if old and not todo and len(files) == len(old["files"]):
        return _up_to_date(old, out, files, ignored, min_clips, t0)  # nothing new, changed or removed: no copying
    clips = _Clips(out, len(files), cats)
    try:
        clips.stream(root, files, plan, todo, settings, jobs, old, progress, on_file)
        counts = clips.check_categories(settings)
    except BaseException:
        clips.tmp.unlink(missing_ok=True)
        raise
    report = BuildReport(
        cache_dir=str(out), n_clips=clips.n_clips, categories={c: int(n) for c, n in zip(cats, counts)}, files_total=len(files),
        files_processed=len(todo), files_reused=len(files) - len(todo), skipped=clips.skipped, ignored=ignored,
        below_threshold=clips.below, too_few=[c for c, n in zip(cats, counts) if n < min_clips], seconds=0.0,
        rebuilt_from_scratch=old is None, content_hash="", scaled_files=clips.scaled,
    )
    _commit(out, root, settings, cats, clips, report, min_clips, t0)
    return report


def _plan(files: list[SourceFile], old: dict | None) -> list[tuple[int, dict] | None]:
    """Per file: (its index, its record) in the old manifest, to reuse its clips; or None, to decode it
    (new, or changed in size, mtime or category)."""
    old_files = {f["path"]: (k, f) for k, f in enumerate(old["files"])} if old else {}
    plan: list[tuple[int, dict] | None] = []
    for f in files:
        hit = old_files.get(f.path)
        ok = hit is not None and hit[1]["size"] == f.size and hit[1]["mtime_ns"] == f.mtime_ns and hit[1]["category"] == f.category
        plan.append(hit if ok and f.size >= 0 else None)
    return plan


class _Clips:
    """Every clip of a build, streamed to ``tmp`` as it comes (decoded now or copied from the old
    cache), with the per-clip columns, per-file records and spectral sums the manifest needs."""

    def __init__(self, out: Path, n_files: int, cats: list[str]) -> None:
        self.tmp = out / f"clips-{os.getpid()}-{time.time_ns()}.f32.partial"
        self.cats = cats
        self.data_hash = hashlib.sha256()
        self.file_records: list[dict] = []
        self.file_sums = np.zeros((n_files, BinSums.VECTOR_SIZE), np.float64)
        self.clip_file: list[np.ndarray] = []
        self.clip_offset: list[np.ndarray] = []
        self.clip_cat: list[np.ndarray] = []
        self.sums = BinSums.zeros()
        self.skipped: list[tuple[str, str, str]] = []
        self.below = self.scaled = self.n_clips = 0

    def stream(self, root: Path, files: list[SourceFile], plan: list, todo: list[int], settings: IngestSettings, jobs: int | None,
               old: dict | None, progress: bool, on_file: Callable[[int], None] | None) -> None:
        out = self.tmp.parent
        old_cache = DatasetCache.open(out) if old else None
        old_sums = np.load(out / old["file_sums"]) if old else None
        bar = _progress(len(files), progress)
        try:
            with open(self.tmp, "wb") as fh, Decoder(root, files, todo, settings, jobs) as results:
                for i, (f, hit) in enumerate(zip(files, plan)):
                    if hit is None:
                        r = next(results)
                        assert r.index == i, "results arrive in submission order"
                        rec, clips, offsets, fsums = _record(f, r), r.clips, r.offsets, r.sums
                    else:
                        rec = dict(hit[1])
                        lo, n = rec.get("first_clip", 0), rec.get("n_clips", 0)
                        clips = np.asarray(old_cache.clips[lo : lo + n]) if n else None
                        offsets = np.asarray(old_cache.offsets[lo : lo + n]) if n else None
                        fsums = BinSums.from_vector(old_sums[hit[0]])
                    self._add(fh, i, f, rec, clips, offsets, fsums)
                    bar.update(1)
                    if on_file:
                        on_file(i)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            bar.close()
            if old_cache:
                old_cache.close()

    def _add(self, fh, i: int, f: SourceFile, rec: dict, clips, offsets, fsums) -> None:
        if rec["status"] == "skipped":
            self.skipped.append((f.path, rec["reason"], rec.get("detail", "")))
        else:
            n = 0 if clips is None else len(clips)
            rec["first_clip"], rec["n_clips"] = self.n_clips, n
            if n:
                buf = np.ascontiguousarray(clips, dtype="<f4")
                fh.write(buf.data)
                self.data_hash.update(buf.data)
                self.clip_file.append(np.full(n, len(self.file_records), np.int64))
                self.clip_offset.append(offsets)
                self.clip_cat.append(np.full(n, self.cats.index(f.category), np.int64))
                self.sums += fsums
                self.file_sums[i] = fsums.to_vector()
            self.n_clips += n
            self.below += rec["info"].get("below_threshold", 0)
            self.scaled += "scaled_by" in rec["info"]
        self.file_records.append(rec)

    @property
    def category_index(self) -> np.ndarray:
        return np.concatenate(self.clip_cat) if self.clip_cat else np.zeros(0, np.int64)

    def check_categories(self, settings: IngestSettings) -> np.ndarray:
        """Clips per category; a category left with none is a :class:`DatasetError`."""
        counts = np.bincount(self.category_index, minlength=len(self.cats))
        empty = [c for c, n in zip(self.cats, counts) if n == 0]
        if empty:
            raise DatasetError(
                f"category {', '.join(repr(c) for c in empty)} has no usable clips (all files skipped or below "
                f"{settings.min_level_dbfs} dBFS {settings.level_mode}); lower --min-level-dbfs or add recordings"
            )
        return counts

    def columns(self) -> dict[str, list]:
        return {
            "file": np.concatenate(self.clip_file).tolist() if self.clip_file else [],
            "offset": np.concatenate(self.clip_offset).tolist() if self.clip_offset else [],
            "category": self.category_index.tolist(),
        }


def _commit(out: Path, root: Path, settings: IngestSettings, cats: list[str], clips: _Clips, report: BuildReport, min_clips: int,
            t0: float) -> None:
    """Name the data by its content, write the per-file sums, then the manifest: the commit point."""
    columns = clips.columns()
    data_hex = clips.data_hash.hexdigest()
    content = hashlib.sha256(data_hex.encode())
    content.update(json.dumps({"categories": cats, "clips": columns, "settings": settings.to_json()}, sort_keys=True).encode())
    content_hex = report.content_hash = content.hexdigest()
    data_name = f"clips-{content_hex[:12]}.f32"
    os.replace(clips.tmp, out / data_name)
    sums_name = f"filesums-{content_hex[:12]}.npy"
    with atomic_file(out / sums_name, unique=True) as fh:  # per-file spectrogram sums: what lets a rebuild skip old files
        np.save(fh, clips.file_sums)
    manifest = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "root": str(root.resolve()),
        "settings": settings.to_json(),
        "settings_hash": settings.digest(),
        "sample_rate": settings.sample_rate,
        "clip_samples": settings.clip_samples,
        "categories": cats,
        "n_clips": clips.n_clips,
        "data_file": data_name,
        "file_sums": sums_name,
        "data_hash": data_hex,
        "content_hash": content_hex,
        "spectral": clips.sums.finish(),
        "clips": columns,
        "files": clips.file_records,
        "min_clips": min_clips,
    }
    report.seconds = time.perf_counter() - t0
    manifest["report"] = report.to_json()
    write_json_atomic(out / MANIFEST, manifest)  # the commit point
    _remove_stale(out)


def _up_to_date(old: dict, out: Path, files: list[SourceFile], ignored: list[tuple[str, str]], min_clips: int, t0: float) -> BuildReport:
    """The report of a rebuild that found nothing to do (the cache is left exactly as it was)."""
    r = old["report"]
    report = BuildReport(
        cache_dir=str(out), n_clips=old["n_clips"], categories=r["categories"], files_total=len(files),
        files_processed=0, files_reused=len(files), skipped=[tuple(s) for s in r["skipped"]], ignored=ignored,
        below_threshold=r["below_threshold"], too_few=[c for c, n in r["categories"].items() if n < min_clips], seconds=time.perf_counter() - t0,
        rebuilt_from_scratch=False, content_hash=old["content_hash"], scaled_files=r["scaled_files"],
    )
    return report


def _record(f: SourceFile, r: FileResult) -> dict:
    rec = {"path": f.path, "category": f.category, "size": f.size, "mtime_ns": f.mtime_ns}
    if r.error:
        rec.update(status="skipped", reason=r.error, detail=r.detail)
    else:
        rec.update(status="ok", info=r.info)
    return rec


def _reusable_manifest(out: Path, settings: IngestSettings, cats: list[str]) -> dict | None:
    try:
        m = read_manifest(out)
        DatasetCache.open(out).close()  # size check of the data file
    except CacheError:
        return None
    if m.get("settings_hash") != settings.digest() or m.get("categories") != cats:
        return None
    if not (out / str(m.get("file_sums", ""))).is_file():
        return None  # the per-file sums are gone: rebuild rather than guess the statistics
    return m


def _remove_stale(out: Path) -> None:
    """Delete partial files of interrupted builds and data files no manifest names."""
    try:
        m = read_manifest(out)
        keep = {m["data_file"], m["file_sums"]}
    except (CacheError, KeyError):
        keep = set()
    for p in [*out.glob("clips-*.f32*"), *out.glob("filesums-*.npy*")]:
        if p.name not in keep:
            p.unlink(missing_ok=True)
    for p in [*out.glob(f".{MANIFEST}.*.tmp"), *out.glob(".filesums-*.npy.*.tmp")]:
        p.unlink(missing_ok=True)


def _progress(total: int, enabled: bool):
    return tqdm(total=total, unit="file", desc="ingest", disable=not enabled, dynamic_ncols=True, smoothing=0.05)
