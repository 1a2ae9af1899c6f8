"""Run under torchrun by test_train.py: train 3 steps data-parallel, then check that every rank holds the
same weights (gradients were all-reduced) and that they moved. Rank 0 writes ddp_result.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from train.config import resolve_config
from train.trainer import Trainer


def main() -> None:
    cache, out = sys.argv[1], Path(sys.argv[2])
    recipe = sys.argv[3] if len(sys.argv) > 3 else "paper"
    batch = 8 if recipe == "laptop" else 4  # laptop: minibatch stddev wants 4 clips a process
    cfg = resolve_config(cache, str(out), recipe, model_dim=4, batch_size=batch, n_critic=2, steps=3, checkpoint_every=3,
                         preview_every=0, progress=False, **({"r1_every": 1} if recipe == "laptop" else {}))
    trainer = Trainer(cfg, log=lambda *a: None)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.G.parameters()])
    summary = trainer.train()
    params = torch.cat([p.detach().flatten() for net in (trainer.G, trainer.D) for p in net.parameters()])
    gathered = [torch.zeros_like(params) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, params)
    result = {
        "world": dist.get_world_size(),
        "backend": dist.get_backend(),
        "params_identical_across_ranks": all(torch.equal(gathered[0], g) for g in gathered[1:]),
        "params_changed": not torch.equal(before, torch.cat([p.detach().flatten() for p in trainer.G.parameters()])),
        "end_step": summary["end_step"],
    }
    if dist.get_rank() == 0:
        (out / "ddp_result.json").write_text(json.dumps(result))
    trainer.close()


if __name__ == "__main__":
    main()
