"""Where training runs: the device, the processes of a distributed run, the CPU thread count, and the
random batches each process draws.

Distributed training is one launcher everywhere (the README, ``gesturegan train --help`` and this module
say the same)::

    torchrun --nproc-per-node N --no-python gesturegan train CACHE --out RUN

The global ``--batch-size`` is split across the N processes (NCCL on GPUs, gloo on CPUs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .errors import TrainingError


def select_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"--device {name} asked for CUDA, but PyTorch sees no GPU here; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is None:  # plain "cuda": this process's GPU (torch.cuda.set_device needs an index)
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int, processes: int = 1) -> int:
    """Give torch an explicit intra-op thread count and return it. ``threads=0`` means this process's
    share of the cores (all of them for one process). Set explicitly because torch's default takes every
    core whatever else runs: two training processes on 2 cores, each with 2 threads, slowed each other
    several-fold. Inter-op parallelism is one thread: the training graph is a chain of big ops."""
    n = threads if threads > 0 else max(1, usable_cores() // max(1, processes))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op work has started in this process: keep what is there
        pass
    return n


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


class BatchSampler:
    """Random clip indices: ``balanced`` picks a category uniformly, then a clip of it; ``uniform`` picks
    any clip. Indices come back sorted, which keeps reads from the memory-mapped cache local."""

    def __init__(self, category_index: np.ndarray, n_categories: int, mode: str, rng: np.random.Generator) -> None:
        self.rng = rng
        self.mode = mode
        self.by_cat = [np.flatnonzero(category_index == k) for k in range(n_categories)]
        self.present = np.array([k for k, idx in enumerate(self.by_cat) if len(idx)])
        self.n = len(category_index)

    def indices(self, batch: int) -> np.ndarray:
        if self.mode == "uniform":
            return np.sort(self.rng.integers(0, self.n, batch))
        cats = self.rng.choice(self.present, batch)
        return np.sort(np.array([self.by_cat[c][self.rng.integers(len(self.by_cat[c]))] for c in cats]))

    def categories(self, batch: int, labels: np.ndarray, grouped: bool = True) -> np.ndarray:
        """Category indices for a generator batch, drawn like the real batches' (balanced or by clip count).
        ``grouped``: in category order, as a real batch is (its indices are sorted and the cache is in
        category order), so the critics' minibatch-stddev groups of consecutive clips hold one category
        in the generator step as they do in the critic step. Drawn in any order, a group mixes categories:
        its spread is then mostly between categories, the critics never saw such groups of real clips,
        and nothing in the groups measures the spread within a category, where collapse happens."""
        if self.mode == "uniform":
            return labels[self.indices(batch)]
        k = self.rng.choice(self.present, batch)
        return np.sort(k) if grouped else k


def out_of_memory(config, n_samples: int, device: torch.device, bf16: bool) -> TrainingError:
    """What to say when a batch does not fit: the sizes that would, for this run's ``config``."""
    c = config
    where = "GPU" if device.type == "cuda" else "main"
    return TrainingError(f"batch size {c.batch_size} (model size d={c.model_dim}, {n_samples} samples) does not fit in "
                         f"{where} memory on {device}: try --batch-size {max(1, c.batch_size // 2)}"
                         f"{', --model-dim ' + str(c.model_dim // 2) if c.model_dim > 1 else ''}"
                         f"{', or --bf16 on' if device.type == 'cuda' and not bf16 else ''}")
