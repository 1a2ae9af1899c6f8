"""The trainer, reading top to bottom: set-up (device, threads, distributed, data, networks, resume),
then the loop (``n_critic`` critic updates and one generator update a step, as the recipe says; the
updates themselves are in :mod:`train.adversarial`), with checkpoints, previews and a NaN guard on the way.

Run it through ``gesturegan train CACHE --out RUN``; data-parallel training is
``torchrun --nproc-per-node N --no-python gesturegan train CACHE --out RUN`` (see :mod:`train.runtime`).
Re-running the same command resumes from the newest readable checkpoint in RUN.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from train import checkpoint as ckpt
from train.adversarial import AdversarialSteps, Networks
from train.cache import DatasetCache, write_json_atomic
from train.config import TrainConfig
from train.critics import MBSTD_GROUP, aux_heads
from train.errors import DatasetError, TrainingError
from train.metrics import spectral_distance_db, spectral_profile
from train.models import ModelSpec, RealTransform, Synthesizer, build_critics, build_generator, sample_latents
from train.previews import LossLog, preview_inputs, render, tensorboard_writer, write_loss_png, write_preview
from train.runtime import BatchSampler, Distributed, out_of_memory, select_device, set_threads
from train.wavegan import kaiming_init

MAX_ROLLBACKS = 3
SCORE_LATENTS = 32  # per category, for the checkpoint score


class Trainer:
    def __init__(self, config: TrainConfig, log=print) -> None:
        self.config = c = config
        self.dist = Distributed.from_env()
        self.log = log if self.dist.main else (lambda *a, **k: None)
        if c.batch_size % self.dist.world:
            raise TrainingError(f"--batch-size {c.batch_size} must be divisible by the {self.dist.world} processes; "
                                f"use {c.batch_size // self.dist.world * self.dist.world or self.dist.world}")
        self.local_batch = c.batch_size // self.dist.world
        if c.mbstd and self.local_batch % MBSTD_GROUP:
            raise TrainingError(f"--mbstd on needs a per-process batch divisible by {MBSTD_GROUP} (groups of real clips must not mix "
                                f"with generated ones); --batch-size {c.batch_size} gives {self.local_batch}")
        self.device = select_device(c.device, self.dist.local_rank)
        self.threads = set_threads(c.threads, self.dist.world) if self.device.type == "cpu" else torch.get_num_threads()
        if self.dist.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.bf16 = c.bf16 == "on" or (c.bf16 == "auto" and self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick the fastest kernels once
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.out = Path(c.out)
        self.out.mkdir(parents=True, exist_ok=True)

        self.cache = DatasetCache.open(c.cache)
        self._check_cache()
        if c.unconditional:
            categories = ("all",) if len(self.cache.categories) > 1 else tuple(self.cache.categories)
            self.labels = np.zeros(len(self.cache), np.int64)
        else:
            categories = tuple(self.cache.categories)
            self.labels = self.cache.category_index
        self.stats = self.cache.spectral_stats(c.view) if c.arch == "specgan" else None
        self.spec = ModelSpec.for_config(c, categories, self.cache.sample_rate, self.cache.clip_samples)

        # the networks' initial weights come from --seed too (a resumed run overwrites them from its checkpoint)
        torch.manual_seed(int(np.random.default_rng([c.seed, 0xC0FFEE]).integers(2**62)))
        self.G = build_generator(self.spec)
        if c.init == "kaiming":
            kaiming_init(self.G)
        self.G = self.G.to(self.device)
        # the moving average of the generator's weights (--ema): what previews, scores and exports use
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if c.ema > 0 else None
        self.D = build_critics(self.spec, c.spectral_resolutions, c.mbstd, aux=aux_heads(c)).to(self.device)
        self.real_transform = RealTransform(self.spec, self.stats).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), c.lr, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), c.lr, betas=(c.beta1, c.beta2))
        self.step = 0
        self.best_score = math.inf
        self.rollbacks = 0
        self.nan_injected = False
        self._resume()
        self._wrap()
        self.reference = self._reference_profiles()

    # -- set-up ---------------------------------------------------------------------------------------

    def _check_cache(self) -> None:
        cache, c = self.cache, self.config
        if len(cache) == 0:
            raise DatasetError(f"the cache {c.cache} holds no clips; check 'gesturegan dataset info {c.cache}' and rebuild with "
                               "recordings in ROOT/<category>/")
        empty = [k for k, n in cache.counts().items() if n == 0]
        if empty and not c.unconditional:
            raise DatasetError(f"categories {', '.join(empty)} have no clips in {c.cache}; add recordings, rebuild with --categories "
                               "without them, or train --unconditional")

    def _resume(self) -> None:
        c = self.config
        gone = ckpt.remove_stale_temporaries(self.out) if self.dist.main else []
        for p in gone:
            self.log(f"removed {p.name}, a checkpoint write that was cut short")
        if self.dist.world > 1:
            dist.barrier()
        found = ckpt.latest_loadable(self.out, "cpu", warn=self.log)
        if found is not None:
            path, state = found
            self._load_state(path, state)
            self.log(f"resuming from {path.name} (step {self.step})")
        if self.dist.main:
            write_json_atomic(self.out / "config.json", {"train": c.to_json(), "model": self.spec.to_json()})
            if found is None:
                self._save_checkpoint(score=False)  # step 0: something to roll back to

    def _load_state(self, path: Path, state: dict) -> None:
        ckpt.check_resumable(path, state, self.config, self.spec)
        if state.get("spectral_stats") is not None:
            # SpecGAN learned images normalised by the statistics of the data it started on: keep them,
            # even if the cache was rebuilt with more recordings since
            self.stats = tuple(np.asarray(v, np.float32) for v in state["spectral_stats"])
            self.real_transform = RealTransform(self.spec, self.stats).to(self.device)
        critic = state["discriminator"]
        if not any(k.startswith("main.") for k in critic):
            critic = {f"main.{k}": v for k, v in critic.items()}  # written before critics were a set: the architecture's alone
        try:
            self.G.load_state_dict(state["generator"])
            self.D.load_state_dict(critic)
            if self.G_ema is not None:  # a run that starts averaging on resume starts from the live weights
                self.G_ema.load_state_dict(state.get("generator_ema") or state["generator"])
        except RuntimeError as e:
            raise ckpt.CheckpointError(f"{path} does not fit this architecture: {str(e).splitlines()[0]}") from e
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.best_score = float(state.get("best_score", math.inf))

    def _wrap(self) -> None:
        """DDP and torch.compile wrappers. The critic step needs a double backward (the gradient penalty),
        which compiled graphs do not support, so it always runs the critic eagerly."""
        self.g_train: nn.Module = self.G
        self.d_train: nn.Module = self.D
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.G, device_ids=ids)
            self.d_train = DistributedDataParallel(self.D, device_ids=ids)
        self.d_for_g: nn.Module = self.D  # generator step: gradients flow through D to G only
        if self.config.compile:
            self.g_train = torch.compile(self.g_train)
            self.d_for_g = torch.compile(self.D)
        nets = Networks(self.G, self.D, self.g_train, self.d_train, self.d_for_g, self.real_transform, self.opt_g, self.opt_d)
        self.steps = AdversarialSteps(self.config, nets, self.device, self._autocast, self._finite_everywhere, self.spec.sample_rate)
        self._reseed()

    def _reseed(self) -> None:
        """RNGs from (seed, rank, step, rollbacks): a resumed or rolled-back run draws fresh batches."""
        key = [self.config.seed, self.dist.rank, self.step, self.rollbacks]
        self.sampler = BatchSampler(self.labels, self.spec.n_categories, self.config.sampling, np.random.default_rng(key))
        torch.manual_seed(int(np.random.default_rng(key).integers(2**62)))

    def _reference_profiles(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(1234)
        ref = {}
        for k in range(self.spec.n_categories):
            idx = np.flatnonzero(self.labels == k)
            if len(idx):
                pick = np.sort(rng.choice(idx, min(len(idx), 256), replace=False))
                ref[k] = spectral_profile(np.asarray(self.cache.clips[pick]))
        return ref

    # -- one step -------------------------------------------------------------------------------------

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.sampler.indices(self.local_batch)
        clips = torch.from_numpy(np.ascontiguousarray(self.cache.clips[idx]))
        onehot = torch.nn.functional.one_hot(torch.from_numpy(self.labels[idx]), self.spec.n_categories).float()
        return clips.to(self.device, non_blocking=True), onehot.to(self.device, non_blocking=True)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _finite_everywhere(self, loss: torch.Tensor) -> bool:
        # a CPU-GPU sync point, once per optimiser step: the price of never applying a NaN update
        ok = torch.isfinite(loss.detach()).float()
        if self.dist.world > 1:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item())

    def _fake_labels(self) -> torch.Tensor:
        k = self.sampler.categories(self.local_batch, self.labels, grouped=self.config.fake_batches == "sorted")
        return torch.nn.functional.one_hot(torch.from_numpy(k), self.spec.n_categories).float().to(self.device)

    # -- checkpoints, previews, rollback --------------------------------------------------------------

    def _g_out(self) -> nn.Module:
        """The generator that is scored, previewed and exported: the moving average where there is one."""
        return self.G if self.G_ema is None else self.G_ema

    @torch.no_grad()
    def _update_ema(self) -> None:
        """After each generator update: average = decay x average + (1 - decay) x live weights. The decay
        ramps up from 0.5 (step 0) so the average is not held back by the random initial weights."""
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        for avg, live in zip(self.G_ema.parameters(), self.G.parameters()):
            avg.lerp_(live.detach(), 1 - decay)
        for avg, live in zip(self.G_ema.buffers(), self.G.buffers()):
            avg.copy_(live)

    def _score(self) -> float:
        g = torch.Generator().manual_seed(777)
        synth = Synthesizer(self.spec, self._g_out(), self.stats).to(self.device)
        generated = {}
        for k in self.reference:
            z = sample_latents(SCORE_LATENTS, self.spec.latent_dim, g)
            cat = torch.zeros(SCORE_LATENTS, self.spec.n_categories)
            cat[:, k] = 1
            generated[k] = render(synth, z, cat)
        return spectral_distance_db(generated, self.reference)

    def _save_checkpoint(self, score: bool = True) -> float:
        value = self._score() if score else math.nan
        is_best = score and value < self.best_score
        if is_best:
            self.best_score = value
        state = ckpt.new_state(
            spec=self.spec.to_json(), config=self.config.to_json(), step=self.step,
            generator=self.G.state_dict(), discriminator=self.D.state_dict(),
            generator_ema=None if self.G_ema is None else self.G_ema.state_dict(),
            opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(),
            best_score=self.best_score, score=value,
            spectral_stats=None if self.stats is None else [s.tolist() for s in self.stats],
            dataset={"cache": self.config.cache, "content_hash": self.cache.content_hash, "clips": len(self.cache),
                     "counts": self.cache.counts(), "settings": self.cache.manifest.get("settings", {})},
            torch_version=torch.__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        path = self.out / ckpt.checkpoint_name(self.step)
        ckpt.save_atomic(state, path, before_rename=ckpt.kill_hook_for_tests(self.step))
        if is_best:
            ckpt.copy_as_best(path, self.out)
        ckpt.prune(self.out, self.config.keep_checkpoints)
        return value

    def _rollback(self) -> None:
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise TrainingError(f"the loss became NaN/Inf {MAX_ROLLBACKS + 1} times near step {self.step} even after rolling back; "
                                f"lower --lr (now {self.config.lr:g}) or raise --gp-lambda, and check the data for broken clips")
        found = ckpt.latest_loadable(self.out, "cpu", warn=self.log)
        if found is None:
            raise TrainingError("the loss became NaN/Inf and there is no checkpoint to roll back to")
        path, state = found
        bad_step = self.step
        self._load_state(path, state)
        self.log(f"\nloss became NaN/Inf at step {bad_step}: rolled back to {path.name} (step {self.step}), rollback {self.rollbacks}/{MAX_ROLLBACKS}")
        self._reseed()

    def _preview(self, writer) -> None:
        z, cat, labels = preview_inputs(self.spec, self.config.preview_latents, self.config.seed)
        audio = render(Synthesizer(self.spec, self._g_out(), self.stats).to(self.device), z, cat)
        wav, png = write_preview(self.out / "previews", self.step, audio, labels, self.spec.sample_rate, self.config.preview_latents)
        if writer is not None:
            for i, name in enumerate(self.spec.categories):
                writer.add_audio(f"preview/{name}", audio[i * self.config.preview_latents], self.step, self.spec.sample_rate)

    # -- the loop -------------------------------------------------------------------------------------

    def train(self) -> dict:
        c = self.config
        summary = {"run": str(self.out), "model": self.spec.describe(), "recipe": c.recipe, "device": str(self.device), "bf16": self.bf16,
                   "threads": self.threads, "processes": self.dist.world, "start_step": self.step}
        if self.step >= c.steps:
            self.log(f"{self.out} is already trained to step {self.step} (--steps {c.steps}); raise --steps to continue")
            summary.update(end_step=self.step, steps_per_second=None)
            self._finish(None)
            return summary
        writer = tensorboard_writer(self.out / "tensorboard", self.log) if self.dist.main else None
        losses = LossLog(self.out / "losses.csv", self.step) if self.dist.main else None
        bar = None
        if self.dist.main and c.progress:
            bar = tqdm(total=c.steps, initial=self.step, unit="step", desc=f"train {c.arch}", dynamic_ncols=True)
        acc: dict[str, list[torch.Tensor]] = {}
        t0, s0 = time.perf_counter(), self.step
        try:
            while self.step < c.steps:
                metrics = self._one_step()
                if metrics is None:
                    self._rollback()
                    acc.clear()
                    if bar is not None:
                        bar.n = self.step
                        bar.refresh()
                    continue
                self.step += 1
                for k, v in metrics.items():
                    acc.setdefault(k, []).append(v)
                if bar is not None:
                    bar.update(1)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    means = {k: float(torch.stack(v).mean()) for k, v in acc.items()}  # sync point, once per log interval
                    acc.clear()
                    if losses is not None:
                        losses.append(self.step, **means)
                    if writer is not None:
                        for k, v in means.items():
                            writer.add_scalar(f"loss/{k}", v, self.step)
                    if bar is not None:
                        bar.set_postfix(D=f"{means['loss_d']:.3f}", G=f"{means['loss_g']:.3f}", W=f"{means['wasserstein']:.3f}")
                if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                    if self.dist.main:
                        score = self._save_checkpoint()
                        if losses is not None:
                            losses.append(self.step, spectral_distance_db=score)
                        if writer is not None:
                            writer.add_scalar("quality/spectral_distance_db", score, self.step)
                    if self.dist.world > 1:
                        dist.barrier()
                    self.rollbacks = 0  # progress past a checkpoint: the NaN budget starts again
                if self.dist.main and c.preview_every and (self.step % c.preview_every == 0 or self.step == c.steps):
                    self._preview(writer)
        except torch.OutOfMemoryError as e:
            raise self._oom(e) from e
        except RuntimeError as e:
            if "can't allocate memory" in str(e) or "out of memory" in str(e):
                raise self._oom(e) from e
            raise
        except MemoryError as e:
            raise self._oom(e) from e
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - t0
        summary.update(end_step=self.step, seconds=round(elapsed, 2),
                       steps_per_second=round((self.step - s0) / elapsed, 4) if elapsed > 0 else None,
                       best_spectral_distance_db=None if math.isinf(self.best_score) else round(self.best_score, 3))
        self._finish(writer)
        return summary

    def _one_step(self) -> dict[str, torch.Tensor] | None:
        out: dict[str, torch.Tensor] = {}
        for _ in range(self.config.n_critic):
            if self.step == self.config.inject_nan_at and not self.nan_injected:
                self.nan_injected = True
                self.steps.poison_next = True
            m = self.steps.critic_step(*self._real_batch())
            if m is None:
                return None
            out.update(m)
        g = self.steps.generator_step(self._fake_labels(), self.step)
        if g is None:
            return None
        if self.G_ema is not None:
            self._update_ema()
        out.update(g)
        return out

    def _oom(self, e: BaseException) -> TrainingError:
        return out_of_memory(self.config, self.spec.n_samples, self.device, self.bf16)

    def _finish(self, writer) -> None:
        if writer is not None:
            writer.close()
        if self.dist.main:
            write_loss_png(self.out / "losses.csv", self.out / "losses.png")

    def close(self, *, finished: bool = True) -> None:
        """Release the cache and the process group. ``finished``: every rank got here normally, so they meet
        at a barrier first and none tears its sockets down while a peer's last collective is still in flight
        (one CI run saw rank 0 abort in gloo as the run ended). After an error a peer may never arrive: no barrier."""
        self.cache.close()
        if self.dist.world > 1 and dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()


def train(config: TrainConfig, log=print) -> dict:
    trainer = Trainer(config, log)
    try:
        summary = trainer.train()
    except BaseException:
        trainer.close(finished=False)
        raise
    trainer.close()
    return summary


def summary_json(summary: dict) -> str:
    return json.dumps(summary, indent=1)
