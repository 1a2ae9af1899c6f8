"""``gesturegan demo``: the first thing a newcomer runs.

For now it makes the built-in gesture corpus, builds a dataset cache from it and draws the cache's
spectrograms, printing what it made. (When a default model ships, the demo renders a piece with it.)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "demo",
        help="make the built-in gesture corpus and a training cache from it, and show what was made",
        description="Synthesise the built-in gesture corpus, build a dataset cache from it, draw spectrograms.",
    )
    d.add_argument("--out", "-o", type=Path, default=Path("gesturegan-demo"), help="output folder (default ./gesturegan-demo)")
    d.add_argument("--per-category", type=int, default=64, help="corpus files per category (default 64)")
    d.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from train.cache import DatasetCache
    from train.cli import write_cache_png
    from train.corpus import write_corpus
    from train.ingest import build_cache

    out: Path = args.out
    corpus_dir, cache_dir, png = out / "corpus", out / "cache", out / "corpus-spectrograms.png"
    desc = write_corpus(corpus_dir, per_category=args.per_category, seed=args.seed, progress=not args.quiet)
    report = build_cache(corpus_dir, cache_dir, progress=not args.quiet, min_clips=min(32, args.per_category))
    with DatasetCache.open(cache_dir) as cache:
        write_cache_png(cache, png)
    recipes: dict[str, set[str]] = {}
    for f in desc["files"]:
        recipes.setdefault(f["category"], set()).add(f["recipe"])
    print(f"GestureGAN demo: made {len(desc['files'])} gesture recordings in {corpus_dir}/")
    for cat, names in recipes.items():
        print(f"  {cat:<24} {args.per_category} files: {', '.join(sorted(names))}")
    print(report.summary())
    print(f"spectrograms of the cache: {png}")
    return 0
