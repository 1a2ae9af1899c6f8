"""``gesturegan dataset sort``: file unlabelled recordings into ``ROOT/<category>/`` with the classifier.

Each file is decoded and resampled like ingest does, cut into the classifier's clip length (the last
part zero-padded), and its clips' probabilities averaged. Files whose best category reaches the
confidence threshold are copied (or moved) into that category's folder; the rest are listed as
uncertain and left where they are, as are files that do not decode. Nothing is overwritten: a name
that exists gets a numeric suffix.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio_io import AUDIO_EXTENSIONS, DecodeError, read_mono
from .classifier import load_classifier
from .slicing import grid_starts, take_clips


@dataclass
class SortReport:
    placed: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    uncertain: list[tuple[str, str, float]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, threshold: float) -> str:
        lines = [f"sorted {sum(len(v) for v in self.placed.values())} files at confidence >= {threshold:.2f}:"]
        for c, files in self.placed.items():
            lines.append(f"  {c:<24} {len(files):>5} files")
        if self.uncertain:
            lines.append(f"{len(self.uncertain)} uncertain (left in place):")
            lines += [f"  {p}  best guess {c} at {conf:.2f}" for p, c, conf in self.uncertain]
        if self.failed:
            lines.append(f"{len(self.failed)} could not be read (left in place):")
            lines += [f"  {p}: {why}" for p, why in self.failed]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"placed": self.placed, "uncertain": self.uncertain, "failed": self.failed}


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


def sort_recordings(source: str | Path, root: str | Path, classifier: str | Path, threshold: float = 0.6,
                    move: bool = False, dry_run: bool = False, progress: bool = True) -> SortReport:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    source, root = Path(source), Path(root)
    if not source.is_dir():
        raise NotADirectoryError(f"{source} is not a folder of recordings")
    clf = load_classifier(classifier)
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    report = SortReport({c: [] for c in clf.categories})
    it = files
    if progress:
        it = tqdm(files, unit="file", desc="sort", dynamic_ncols=True)
    for path in it:
        rel = str(path.relative_to(source))
        try:
            audio = read_mono(str(path), clf.sample_rate).samples
        except DecodeError as e:
            report.failed.append((rel, str(e)))
            continue
        n = clf.clip_samples
        starts = grid_starts(len(audio), n, n, pad_end=True)
        if len(starts) == 0:
            starts = np.zeros(1, np.int64)
        clips = take_clips(audio, starts, n)
        probs = clf.predict_proba(clips).mean(axis=0)
        k = int(probs.argmax())
        conf = float(probs[k])
        if conf < threshold:
            report.uncertain.append((rel, clf.categories[k], conf))
            continue
        report.placed[clf.categories[k]].append((rel, conf))
        if dry_run:
            continue
        folder = root / clf.categories[k]
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder, path.name)
        if move:
            shutil.move(str(path), target)
        else:
            shutil.copy2(path, target)
    return report
