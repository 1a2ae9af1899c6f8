"""``gesturegan dataset build``: a folder of recordings -> a dataset cache, in parallel, incrementally.

Steps per file (in worker processes): decode with libsndfile, mix to mono, resample with soxr, cut
clips (grid or onset-aligned), drop clips under the level threshold, optionally peak-normalise, and
sum the spectrogram statistics. The parent writes clips in a fixed order (category, then path), so
the cache and its content hash do not depend on the number of workers.

A rebuild reuses every file whose path, size and modification time are unchanged (clips are copied
from the old cache, nothing is decoded again); any change of settings rebuilds from scratch.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from instrument.files import atomic_file

from . import slicing
from .audio_io import AUDIO_EXTENSIONS, RESAMPLE_QUALITIES, DecodeError, read_mono
from .cache import CACHE_FORMAT, CACHE_VERSION, MANIFEST, DatasetCache, read_manifest, write_json_atomic
from .errors import CacheError, DatasetError
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
            with open(self.tmp, "wb") as fh, _results(root, files, todo, settings, jobs) as results:
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


class _results:
    """Context manager yielding FileResults for ``todo`` in order, from worker processes or in-process.

    A worker that dies (out of memory, a crashing decoder) raises BrokenProcessPool here instead of
    hanging the build, which is why this is a ProcessPoolExecutor and not multiprocessing.Pool.
    """

    def __init__(self, root: Path, files: list[SourceFile], todo: list[int], settings: IngestSettings, jobs: int | None):
        self.tasks = [(str(root / files[i].path), i, settings) for i in todo]
        self.jobs = max(1, min(jobs or _cpu_count(), len(self.tasks) or 1))
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


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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
