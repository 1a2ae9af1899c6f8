"""The researcher's subcommands: ``dataset`` (its build/synth/debian/info tools need no torch; ``sort``
does), ``train``, ``classifier`` and ``evaluate``. pyproject.toml's ``gesturegan.commands`` entry points
name the :class:`~instrument.main.Command` objects at the end of this module; ``gesturegan demo
--corpus`` reaches :func:`make_demo_corpus` through the ``gesturegan.demo`` group."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

from instrument.files import write_atomic
from instrument.main import Command, hidden_command
from instrument.picture import write_spectrogram_png

from .cache import DatasetCache
from .config import DEBUZZ_HELP, WEIGHTS, WEIGHTS_HELP, add_arguments, config_from_args
from .corpus import write_corpus
from .errors import CheckpointError, DatasetError, ModelError, TrainingError
from .build import build_cache
from .ingest import ALIGN_MODES, DEFAULT_CATEGORIES, NORMALIZE_MODES, IngestSettings
from .slicing import LEVEL_MODES, OnsetSettings, check_clip_samples
from .sound_packages import build_debian_corpus

# The commands that need torch import their modules when they run (trainer, classifier, evaluate, sort),
# so the dataset tools and the help work on an install without the [train] extra.

RESAMPLE_CHOICES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


def _clip_samples(text: str) -> int:
    try:
        return check_clip_samples(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e) if text.strip().lstrip("-").isdigit() else f"clip length must be an integer, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _overlap(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"overlap must be a number in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"overlap must be in [0, 1) (0.5 = clips overlap by half), got {v}")
    return v


def register_dataset(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser(
        "dataset",
        help="make training data: synthesise the gesture corpus, build a clip cache from recordings",
        description="Turn recordings grouped by gesture category into a training cache, or make the built-in corpus.",
    )
    dsub = ds.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)

    b = dsub.add_parser(
        "build",
        help="decode ROOT/<category>/**/*.wav|flac|ogg|aiff|mp3 into a memory-mapped clip cache",
        description=(
            "Decode every audio file under ROOT/<category>/, mix to mono, resample (soxr) to --sample-rate, "
            "cut fixed-length clips and store them in a cache that training memory-maps. Re-running only "
            "decodes new or changed files. Bad files are skipped and listed at the end."
        ),
        epilog="example: gesturegan dataset build my_recordings --out my_cache --align onset --min-level-dbfs -45",
    )
    b.add_argument("root", type=Path, help="dataset folder with one sub-folder per gesture category")
    b.add_argument("--out", "-o", type=Path, required=True, help="cache folder to create or update")
    b.add_argument("--sample-rate", type=int, default=16000, help="target sample rate in Hz (default 16000)")
    b.add_argument("--clip-samples", type=_clip_samples, default=16384, help="clip length, a power of 2: 16384 (default), 32768, 65536")
    hop = b.add_mutually_exclusive_group()
    hop.add_argument("--hop-samples", type=_positive_int, help="distance between clip starts (default: the clip length)")
    hop.add_argument("--overlap", type=_overlap, help="overlap between neighbouring clips as a fraction, e.g. 0.5")
    b.add_argument("--no-pad-end", action="store_true", help="drop the last partial clip instead of zero-padding it")
    b.add_argument("--align", choices=ALIGN_MODES, default="grid", help="grid: clips every hop; onset: one clip per attack (one-shots)")
    b.add_argument("--onset-rise-db", type=float, default=OnsetSettings.rise_db, help="onset mode: rise in dB that marks an attack (default 12)")
    b.add_argument("--onset-preroll-ms", type=float, default=OnsetSettings.preroll_seconds * 1000, help="onset mode: clip starts this many ms before the attack (default 5)")
    b.add_argument("--min-level-dbfs", type=float, default=-60.0, help="drop clips quieter than this (default -60 dBFS)")
    b.add_argument("--level", choices=LEVEL_MODES, default="peak", help="how --min-level-dbfs measures a clip (default peak)")
    b.add_argument("--normalize", choices=NORMALIZE_MODES, default="none", help="peak-normalise each file or clip (default none: keep dynamics)")
    b.add_argument("--resample-quality", choices=RESAMPLE_CHOICES, default="HQ", help="soxr quality (default HQ)")
    b.add_argument("--categories", help="comma-separated category folders to use, in model order (default: all folders)")
    b.add_argument("--min-clips", type=int, default=32, help="warn about categories with fewer clips than this (default 32)")
    b.add_argument("--jobs", "-j", type=_positive_int, default=None, help="decoder processes (default: all cores)")
    b.add_argument("--report", type=Path, help="also write the build report as JSON to this file")
    b.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    b.set_defaults(func=_build)

    s = dsub.add_parser(
        "synth",
        help="write the built-in procedural gesture corpus (four categories) as WAV files",
        description="Write seeded procedural recordings of the four gesture categories into OUT/<category>/.",
        epilog="example: gesturegan dataset synth --out corpus --per-category 256 --seed 0",
    )
    s.add_argument("--out", "-o", type=Path, required=True, help="folder to write into")
    s.add_argument("--per-category", type=_positive_int, default=64, help="files per category (default 64)")
    s.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files (default 0)")
    s.add_argument("--sample-rate", type=int, default=16000, help="sample rate of the files in Hz (default 16000)")
    s.add_argument("--seconds", type=float, default=16384 / 16000, help="length of each file (default 1.024 s)")
    s.add_argument("--subtype", default="PCM_16", choices=("PCM_16", "PCM_24", "PCM_32", "FLOAT"), help="WAV sample format (default PCM_16)")
    s.add_argument("--categories", help=f"comma-separated subset of {', '.join(DEFAULT_CATEGORIES)}")
    s.add_argument("--jobs", "-j", type=_positive_int, default=1, help="processes (default 1)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(func=_synth)

    d = dsub.add_parser(
        "debian",
        help="a corpus of real recordings from Debian's sound packages (Sonic Pi, LMMS, freedesktop sounds, games)",
        description=("Copy sound effects and instrument samples that Debian packages ship into OUT/<category>/ (one-shots: "
                     "one second from the attack; continuous sounds whole), with the package, source file and licence of every "
                     "file in OUT/corpus.json."),
        epilog="example: gesturegan dataset debian --out real --install && gesturegan dataset build real --out real-cache --overlap 0.5",
    )
    d.add_argument("--out", "-o", type=Path, required=True, help="folder to write into (replaced if it exists)")
    d.add_argument("--install", action="store_true", help="apt-get install the packages that are missing (needs root)")
    d.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)  # tests: unpacked packages elsewhere
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    d.set_defaults(func=_debian)

    i = dsub.add_parser("info", help="summarise a cache; optionally check its hash and draw its spectrograms",
                        description="Print what a dataset cache holds.")
    i.add_argument("cache", type=Path, help="cache folder made by 'gesturegan dataset build'")
    i.add_argument("--verify", action="store_true", help="re-hash the clip data and compare with the manifest")
    i.add_argument("--png", type=Path, help="write a spectrogram grid of a few clips per category to this PNG")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=_info)
    _register_sort(dsub)


def register_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train",
        help="train a category-conditioned WaveGAN or SpecGAN on a dataset cache (resumes if RUN has checkpoints)",
        description=(
            "Train a generator on a cache made by 'gesturegan dataset build', by a recipe: the paper's WGAN-GP (the "
            "default) or 'laptop' (learns the categories in under an hour on a 2-core CPU). RUN gets config.json, "
            "checkpoints (the last few and best.pt), previews/ (WAV + spectrogram PNG grids), losses.csv/.png and "
            "tensorboard/. Re-running the same command continues from the newest checkpoint; raise --steps to train longer. "
            "Several GPUs: torchrun --nproc-per-node N --no-python gesturegan train ..."
        ),
        epilog="example: gesturegan train corpus-cache --out runs/wavegan --model-dim 32 --steps 20000",
    )
    add_arguments(t)
    t.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as e:
        raise TrainingError(str(e)) from e
    from .trainer import summary_json, train  # torch: only for the command that needs it

    summary = train(config)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one report
        print(summary_json(summary))
    return 0


def _build(args: argparse.Namespace) -> int:
    hop = args.hop_samples
    if args.overlap is not None:
        hop = max(1, int(round(args.clip_samples * (1 - args.overlap))))
    settings = IngestSettings(
        sample_rate=args.sample_rate,
        clip_samples=args.clip_samples,
        hop_samples=hop,
        pad_end=not args.no_pad_end,
        align=args.align,
        onset=OnsetSettings(rise_db=args.onset_rise_db, preroll_seconds=args.onset_preroll_ms / 1000),
        min_level_dbfs=args.min_level_dbfs,
        level_mode=args.level,
        normalize=args.normalize,
        resample_quality=args.resample_quality,
    )
    cats = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    report = build_cache(args.root, args.out, settings, categories=cats, jobs=args.jobs, min_clips=args.min_clips, progress=not args.quiet)
    print(report.summary())
    if report.too_few:
        print(f"warning: {', '.join(report.too_few)} ha{'s' if len(report.too_few) == 1 else 've'} fewer than {args.min_clips} clips; "
              "a GAN will struggle to learn it", file=sys.stderr)
    if args.report:
        write_atomic(args.report, json.dumps(report.to_json(), indent=1))
    return 0


def _synth(args: argparse.Namespace) -> int:
    cats = tuple(c.strip() for c in args.categories.split(",")) if args.categories else DEFAULT_CATEGORIES
    desc = write_corpus(args.out, args.per_category, args.seed, args.sample_rate, args.seconds, cats, args.subtype, args.jobs, not args.quiet)
    print(f"wrote {len(desc['files'])} files ({args.per_category} per category, seed {args.seed}, "
          f"{desc['n_samples']} samples at {args.sample_rate} Hz) to {args.out}")
    return 0


def _debian(args: argparse.Namespace) -> int:
    desc = build_debian_corpus(args.out, args.root, args.install, progress=not args.quiet)
    counts = ", ".join(f"{c} {n}" for c, n in desc["counts"].items())
    print(f"wrote {len(desc['files'])} recordings from {len(desc['packages'])} packages to {args.out}: {counts}; "
          f"next: gesturegan dataset build {args.out} --out CACHE --overlap 0.5")
    for s in desc["skipped"]:
        print(f"skipped {s['file']}: {s['reason']}", file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    with DatasetCache.open(args.cache, verify=args.verify) as cache:
        m = cache.manifest
        summary = {
            "cache": str(args.cache),
            "clips": len(cache),
            "sample_rate": cache.sample_rate,
            "clip_samples": cache.clip_samples,
            "categories": cache.counts(),
            "files": len(m["files"]),
            "skipped_files": sum(f["status"] == "skipped" for f in m["files"]),
            "settings": m["settings"],
            "content_hash": cache.content_hash,
            "verified": bool(args.verify),
        }
        if args.png:
            write_cache_png(cache, args.png)
            summary["png"] = str(args.png)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{summary['cache']}: {summary['clips']} clips of {summary['clip_samples']} samples at {summary['sample_rate']} Hz"
              f"{' (hash verified)' if args.verify else ''}")
        for c, n in summary["categories"].items():
            print(f"  {c:<24} {n:>7} clips")
        print(f"  from {summary['files']} files ({summary['skipped_files']} skipped); content hash {summary['content_hash'][:16]}")
        if args.png:
            print(f"  spectrograms: {args.png}")
    return 0


def write_cache_png(cache, path: Path, per_category: int = 4) -> None:
    """A spectrogram grid: ``per_category`` evenly spaced clips of each category, one row each."""
    sounds, labels = [], []
    for k, name in enumerate(cache.categories):
        idx = np.flatnonzero(cache.category_index == k)
        pick = idx[np.linspace(0, len(idx) - 1, min(per_category, len(idx))).astype(int)] if len(idx) else []
        for j in pick:
            sounds.append(np.asarray(cache.clips[j]))
            labels.append(name)
    write_spectrogram_png(path, sounds, cache.sample_rate, labels, columns=per_category)


def register_classifier(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("classifier", help="train the gesture classifier used by evaluate and dataset sort",
                       description="Train a small log-mel CNN on a dataset cache, with a held-out split by source file.")
    csub = c.add_subparsers(dest="classifier_command", metavar="COMMAND", required=True)
    ct = csub.add_parser("train", help="train on a cache and report held-out test accuracy",
                         epilog="example: gesturegan classifier train corpus-cache --out classifier.pt")
    ct.add_argument("cache", type=Path, help="dataset cache with at least 2 categories")
    ct.add_argument("--out", "-o", type=Path, required=True, help="classifier file to write (.pt)")
    ct.add_argument("--epochs", type=_positive_int, default=30, help="training epochs (default 30)")
    ct.add_argument("--batch-size", type=_positive_int, default=32)
    ct.add_argument("--lr", type=float, default=2e-3)
    ct.add_argument("--seed", type=int, default=0)
    ct.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ct.set_defaults(func=_classifier_train)


def register_evaluate(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="score a trained generator: per-category accuracy, inception score, mixtures, copying",
                       description="Generate clips per category and judge them with the gesture classifier.",
                       epilog="example: gesturegan evaluate runs/wavegan --classifier classifier.pt --json report.json")
    e.add_argument("checkpoint", type=Path, help="checkpoint file, or a run folder (its best.pt)")
    e.add_argument("--classifier", type=Path, required=True, help="made by 'gesturegan classifier train'")
    e.add_argument("--cache", type=Path, help="dataset cache for the real-data numbers (default: the one the model was trained on)")
    e.add_argument("--per-category", "-n", type=_positive_int, default=128, help="generated clips per category (default 128)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--png", type=Path, help="also draw a few generated clips per category to this PNG")
    e.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    e.add_argument("--device", default="cpu", help="where to generate and classify: cpu (default), cuda, cuda:1, or auto")
    e.add_argument("--weights", choices=WEIGHTS, default="auto", help=WEIGHTS_HELP)
    e.add_argument("--debuzz", type=int, default=None, metavar="PERIODS", help=DEBUZZ_HELP)
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    e.set_defaults(func=_evaluate)


def _register_sort(dsub: argparse._SubParsersAction) -> None:
    """``dataset sort`` (the classifier: torch)."""
    if importlib.util.find_spec("torch") is None:  # left out of the list; run, it says what to install
        hidden_command(dsub, "sort", "'gesturegan dataset sort' needs torch, which this install lacks: pip install 'gesturegan[train]'")
        return
    s = dsub.add_parser("sort", help="file unlabelled recordings into ROOT/<category>/ with the classifier",
                        description="Classify each recording in SOURCE and copy it into ROOT/<category>/ when confident.",
                        epilog="example: gesturegan dataset sort field_recordings --into my_dataset --classifier classifier.pt")
    s.add_argument("source", type=Path, help="folder of unlabelled recordings (searched recursively)")
    s.add_argument("--into", type=Path, required=True, help="dataset root to file them into")
    s.add_argument("--classifier", type=Path, required=True, help="made by 'gesturegan classifier train'")
    s.add_argument("--threshold", type=float, default=0.6, help="minimum confidence to file a recording (default 0.6)")
    s.add_argument("--move", action="store_true", help="move instead of copy")
    s.add_argument("--dry-run", action="store_true", help="only report what would happen")
    s.add_argument("--report", type=Path, help="also write the report as JSON")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(func=_sort)


def _classifier_train(args: argparse.Namespace) -> int:
    from .classifier import train_classifier  # torch: only for the command that needs it

    info = train_classifier(args.cache, args.out, args.epochs, args.batch_size, args.lr, args.seed, progress=not args.quiet)
    print(f"classifier: {args.out}; test accuracy {info['test_accuracy']:.1%} on {info['clips']['test']} held-out clips, "
          f"balanced {info['balanced_test_accuracy']:.1%} (balanced validation {info['val_accuracy']:.1%}, "
          f"best epoch {info['best_epoch']}/{info['epochs']})")
    if info["class_weights"]:
        print("categories weighed by the inverse of their share of the training clips: "
              + ", ".join(f"{c} {w:g}" for c, w in zip(info["per_category_test_accuracy"], info["class_weights"])))
    for c, a in info["per_category_test_accuracy"].items():
        print(f"  {c:<24} {a:6.1%}")
    if info["split_by_clip"]:
        print(f"note: {', '.join(info['split_by_clip'])} had fewer than 3 source files and were split by clip, "
              "so their test accuracy is optimistic", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_report, to_json  # torch: only for the command that needs it

    report = evaluate(args.checkpoint, args.classifier, args.cache, args.per_category, args.seed, png=args.png, device=args.device,
                      weights=args.weights, debuzz=args.debuzz, progress=not args.quiet)
    print(format_report(report))
    if args.json:
        write_atomic(args.json, to_json(report))
    return 0


def _sort(args: argparse.Namespace) -> int:
    from .sort import sort_recordings  # torch: only for the command that needs it

    try:
        report = sort_recordings(args.source, args.into, args.classifier, args.threshold, args.move, args.dry_run, not args.quiet)
    except ValueError as e:
        raise DatasetError(str(e)) from e
    print(report.summary(args.threshold))
    if args.report:
        write_atomic(args.report, json.dumps(report.to_json(), indent=1))
    return 0


def make_demo_corpus(out: Path, per_category: int = 64, seed: int = 0, progress: bool = True) -> int:
    """``gesturegan demo --corpus``: the built-in gesture corpus in OUT/corpus, a training cache of it in
    OUT/cache and its spectrograms in OUT/corpus-spectrograms.png (the researcher's starting point)."""

    corpus_dir, cache_dir, png = out / "corpus", out / "cache", out / "corpus-spectrograms.png"
    desc = write_corpus(corpus_dir, per_category=per_category, seed=seed, progress=progress)
    report = build_cache(corpus_dir, cache_dir, progress=progress, min_clips=min(32, per_category))
    with DatasetCache.open(cache_dir) as cache:
        write_cache_png(cache, png)
    recipes: dict[str, set[str]] = {}
    for f in desc["files"]:
        recipes.setdefault(f["category"], set()).add(f["recipe"])
    print(f"GestureGAN demo: made {len(desc['files'])} gesture recordings in {corpus_dir}/")
    for cat, names in recipes.items():
        print(f"  {cat:<24} {per_category} files: {', '.join(sorted(names))}")
    print(report.summary())
    print(f"spectrograms of the cache: {png}")
    return 0


USER_ERRORS = (DatasetError, ModelError, CheckpointError, TrainingError)
# what pyproject.toml's gesturegan.commands entry points name
DATASET = Command(register_dataset, order=10, errors=USER_ERRORS)
TRAIN = Command(register_train, order=20, needs=("torch",), errors=USER_ERRORS)
CLASSIFIER = Command(register_classifier, order=30, needs=("torch",), errors=USER_ERRORS)
EVALUATE = Command(register_evaluate, order=40, needs=("torch",), errors=USER_ERRORS)
