"""``gesturegan demo``: the first thing a newcomer runs.

It renders the demo piece (``presets/scores/demo.toml``, about two and a half minutes using all four
gesture categories) with the bundled default model to ``gesturegan-demo/demo.wav`` and a spectrogram
``demo.png``, offline: no sound card, no PyTorch. ``--corpus`` also makes the built-in gesture corpus
and a training cache from it (the researcher's starting point): the train package does that, found
through the ``gesturegan.demo`` entry point ``corpus`` (this package never imports train).
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import MissingExtraError
from .files import shipped
from .render import render_score
from .score import ScoreError, load_score


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "demo",
        help="render the demo piece with the bundled model to a WAV and a spectrogram PNG",
        description="Render the demo piece (presets/scores/demo.toml) with the bundled default model to "
                    "OUT/demo.wav and OUT/demo.png, offline. With --corpus, also synthesise the built-in gesture "
                    "corpus, build a dataset cache from it and draw its spectrograms.",
    )
    d.add_argument("--corpus", action="store_true", help="also make the built-in gesture corpus and a training cache from it")
    d.add_argument("--out", "-o", type=Path, default=Path("gesturegan-demo"), help="output folder (default ./gesturegan-demo)")
    d.add_argument("--per-category", type=int, default=64, help="corpus files per category (default 64)")
    d.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    piece = shipped("scores", "demo.toml")
    if piece is None:
        raise ScoreError("this install has no demo piece (presets/scores/demo.toml)")
    score = load_score(piece)
    summary = render_score(score, out / "demo.wav", progress=not args.quiet, png=True)
    audio, sr = sf.read(summary["wav"], dtype="float32")
    peak = float(np.abs(audio).max())
    print(f"GestureGAN demo: rendered \"{score.title}\" ({summary['seconds']:.0f} s) with {summary['model']}")
    print(f"  {summary['wav']}  ({sr} Hz, peak {20 * np.log10(max(peak, 1e-9)):.1f} dBFS, {summary['clips_generated']} clips generated)")
    print(f"  {summary['png']}  (its spectrogram, 30 s a row)")
    print("  play it live: gesturegan play    render your own: gesturegan render piece.toml --png")
    if args.corpus:
        makers = [ep for ep in entry_points(group="gesturegan.demo") if ep.name == "corpus"]
        if not makers:
            raise MissingExtraError("'gesturegan demo --corpus' needs the train package, which this install lacks")
        return int(makers[0].load()(out, per_category=args.per_category, seed=args.seed, progress=not args.quiet) or 0)
    return 0
