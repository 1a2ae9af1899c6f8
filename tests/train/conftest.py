"""Tiny category-folder datasets and caches, built once per test session through the real ingest path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from train.corpus import write_corpus
from train.build import build_cache
from train.ingest import IngestSettings

REPO = Path(__file__).resolve().parents[2]

# the smallest networks that still have every layer: tests check plumbing, not sound quality
TINY = ["--model-dim", "4", "--batch-size", "4", "--n-critic", "2", "--preview-latents", "1", "--log-every", "1", "--quiet"]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, per_category=6, seed=3, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_cache(corpus_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "cache"
    build_cache(corpus_dir, out, IngestSettings(), jobs=1, min_clips=1, progress=False)
    return out


@pytest.fixture(scope="session")
def cache_8192(corpus_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache8192") / "cache"
    build_cache(corpus_dir, out, IngestSettings(clip_samples=8192), jobs=1, min_clips=1, progress=False)
    return out


@pytest.fixture(scope="session")
def cache_two_categories(corpus_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache2") / "cache"
    build_cache(corpus_dir, out, IngestSettings(), categories=["trigger", "continuous_variation"], jobs=1, min_clips=1, progress=False)
    return out


def gesturegan(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command as a user runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "instrument", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)
