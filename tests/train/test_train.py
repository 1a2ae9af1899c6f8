"""Training through the command line: one step of every architecture, checkpoints, resume after kills,
NaN rollback, data-parallel training, and the errors a user can cause."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from instrument.main import main
from train import checkpoint as ckpt
from train.cache import DatasetCache, read_manifest, write_json_atomic
from train.config import TrainConfig
from train.trainer import Trainer

from .conftest import REPO, TINY, gesturegan

ARCHS = [
    ["--arch", "wavegan", "--upsample", "transpose"],
    ["--arch", "wavegan", "--upsample", "nearest"],
    ["--arch", "wavegan", "--upsample", "subpixel", "--post-filter-taps", "16"],
    ["--arch", "specgan", "--view", "128", "--griffin-lim-iters", "4"],
    ["--arch", "specgan", "--view", "64", "--griffin-lim-iters", "4"],
]


def _train(cache: Path, out: Path, *extra: str) -> int:
    return main(["train", str(cache), "--out", str(out), *TINY, *extra])


def _steps(run: Path) -> list[int]:
    return [s for s, _ in ckpt.list_checkpoints(run)]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "-".join(a[1::2][:2]))
def test_one_training_step_writes_checkpoint_previews_and_logs(tiny_cache, tmp_path, capsys, arch):
    run = tmp_path / "run"
    assert _train(tiny_cache, run, *arch, "--steps", "1", "--checkpoint-every", "1", "--preview-every", "1") == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["arch"] == arch[1] and cfg["model"]["categories"] == ["trigger", "trigger_continuous", "continuous_variation",
                                                                              "continuous_repetition"]
    assert _steps(run) == [0, 1] and (run / "best.pt").is_file()
    # 4 categories + 3 neighbouring mixtures, one latent each
    wav, sr = sf.read(run / "previews" / "preview-00000001.wav")
    assert sr == 16000 and len(wav) == 7 * (16384 + 4000)
    assert (run / "previews" / "preview-00000001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "losses.png").is_file()
    rows = (run / "losses.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss_d,loss_g") and len(rows) >= 2
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    # the checkpoint is a complete model: latent + category mixture in, waveform out
    synth, spec, state = ckpt.load_synthesizer(run)
    assert state["step"] == 1 and state["config"]["arch"] == arch[1]
    with torch.no_grad():
        audio = synth(torch.rand(2, 100) * 2 - 1, torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.25, 0.75]]))
    assert audio.shape == (2, 16384) and torch.isfinite(audio).all() and audio.abs().max() <= 1


def test_console_command_trains_unconditional_and_reports_json(tiny_cache, tmp_path):
    r = gesturegan("train", str(tiny_cache), "--out", str(tmp_path / "run"), *TINY, "--unconditional", "--steps", "2",
                   "--checkpoint-every", "1", "--preview-every", "2")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["end_step"] == 2 and summary["device"] == "cpu" and summary["steps_per_second"] > 0
    assert "categories: all" in summary["model"]
    wav, _ = sf.read(tmp_path / "run" / "previews" / "preview-00000002.wav")
    assert len(wav) == 16384 + 4000  # one category, no mixtures


def test_rerun_resumes_extends_and_prunes(tiny_cache, tmp_path, capsys):
    run = tmp_path / "run"
    args = ("--steps", "3", "--checkpoint-every", "1", "--keep-checkpoints", "2", "--preview-every", "0")
    assert _train(tiny_cache, run, *args) == 0
    assert _steps(run) == [2, 3]
    capsys.readouterr()
    assert _train(tiny_cache, run, *args) == 0
    assert "already trained to step 3" in capsys.readouterr().out
    assert _train(tiny_cache, run, "--steps", "5", "--checkpoint-every", "1", "--keep-checkpoints", "2", "--preview-every", "0") == 0
    out = capsys.readouterr().out
    assert "resuming from ckpt-00000003.pt (step 3)" in out
    assert json.loads(out[out.index("{"):])["start_step"] == 3
    assert _steps(run) == [4, 5]
    steps = [int(line.split(",")[0]) for line in (run / "losses.csv").read_text().splitlines()[1:]]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5]


def test_kill_during_checkpoint_write_loses_at_most_one_interval(tiny_cache, tmp_path):
    run = tmp_path / "run"
    args = ("train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "6", "--checkpoint-every", "2", "--preview-every", "0")
    r = gesturegan(*args, env={**os.environ, "GESTUREGAN_TEST_KILL_IN_CHECKPOINT": "4"})
    assert r.returncode == -signal.SIGKILL
    assert _steps(run)[-1] == 2
    assert (run / ".ckpt-00000004.pt.tmp").is_file()  # the half-written file, never under a real name
    r = gesturegan(*args)
    assert r.returncode == 0, r.stderr
    assert "removed .ckpt-00000004.pt.tmp" in r.stdout and "resuming from ckpt-00000002.pt (step 2)" in r.stdout
    assert json.loads(r.stdout[r.stdout.index("{"):])["end_step"] == 6
    assert not list(run.glob(".*.tmp"))


def test_kill_mid_training_resumes_from_the_last_checkpoint(tiny_cache, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "instrument", "train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "100000",
           "--checkpoint-every", "2", "--preview-every", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (run / "ckpt-00000004.pt").exists():
            time.sleep(0.05)
        time.sleep(0.3)  # somewhere inside a later step
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = _steps(run)[-1]
    assert before >= 4
    r = gesturegan("train", str(tiny_cache), "--out", str(run), *TINY, "--steps", str(before + 1), "--checkpoint-every", "2",
                   "--preview-every", "0")
    assert r.returncode == 0, r.stderr
    assert f"resuming from {ckpt.checkpoint_name(before)} (step {before})" in r.stdout


def test_unreadable_latest_checkpoint_is_skipped(tiny_cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(tiny_cache, run, "--steps", "2", "--checkpoint-every", "1", "--preview-every", "0") == 0
    latest = run / "ckpt-00000002.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # damaged outside our control (disk, copy)
    capsys.readouterr()
    assert _train(tiny_cache, run, "--steps", "3", "--checkpoint-every", "1", "--preview-every", "0") == 0
    out = capsys.readouterr().out
    assert "skipping ckpt-00000002.pt: " in out and "not a readable checkpoint" in out
    assert "resuming from ckpt-00000001.pt (step 1)" in out


def test_nan_loss_rolls_back_to_the_last_good_checkpoint(tiny_cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(tiny_cache, run, "--steps", "5", "--checkpoint-every", "2", "--preview-every", "0", "--inject-nan-at", "3") == 0
    out = capsys.readouterr().out
    assert "loss became NaN/Inf at step 3: rolled back to ckpt-00000002.pt (step 2)" in out
    assert json.loads(out[out.index("{"):])["end_step"] == 5
    state = ckpt.load(run / "ckpt-00000005.pt")
    assert all(torch.isfinite(v).all() for v in state["generator"].values())


@pytest.mark.parametrize("recipe", ["paper", "laptop"])
def test_ddp_two_cpu_processes_with_gloo(tiny_cache, tmp_path, recipe):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(Path(__file__).parent / "ddp_check.py"),
           str(tiny_cache), str(run), recipe]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads((run / "ddp_result.json").read_text())
    assert result["world"] == 2 and result["backend"] == "gloo"
    assert result["params_identical_across_ranks"] and result["params_changed"]
    assert result["end_step"] == 3 and _steps(run)[-1] == 3


# -- errors a user can cause --------------------------------------------------------------------------


def _error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def test_empty_cache_is_refused(tiny_cache, tmp_path, capsys):
    empty = tmp_path / "empty"
    shutil.copytree(tiny_cache, empty)
    m = read_manifest(empty)
    (empty / m["data_file"]).write_bytes(b"")
    m["n_clips"] = 0
    m["clips"] = {k: [] for k in m["clips"]}
    write_json_atomic(empty / "manifest.json", m)
    err = _error(capsys, "train", str(empty), "--out", str(tmp_path / "run"), *TINY)
    assert "holds no clips" in err and "gesturegan dataset info" in err


def test_clip_length_the_model_cannot_make_is_refused(cache_8192, tiny_cache, tmp_path, capsys):
    err = _error(capsys, "train", str(cache_8192), "--out", str(tmp_path / "a"), *TINY)
    assert "16384, 32768 or 65536 samples, got n_samples=8192" in err and "--clip-samples" in err
    err = _error(capsys, "train", str(cache_8192), "--out", str(tmp_path / "b"), *TINY, "--arch", "specgan")
    assert "SpecGAN works on 16384-sample clips" in err


def test_resuming_with_another_architecture_or_categories_is_refused(tiny_cache, cache_two_categories, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(tiny_cache, run, "--steps", "1", "--checkpoint-every", "1", "--preview-every", "0") == 0
    err = _error(capsys, "train", str(tiny_cache), "--out", str(run), *TINY, "--arch", "specgan", "--steps", "2")
    assert "is a different model (arch: 'wavegan' vs 'specgan'" in err and "new --out folder" in err
    err = _error(capsys, "train", str(tiny_cache), "--out", str(run), *TINY, "--model-dim", "8", "--steps", "2")
    assert "model_dim: 4 vs 8" in err
    err = _error(capsys, "train", str(cache_two_categories), "--out", str(run), *TINY, "--steps", "2")
    assert "was trained on categories" in err and "'trigger', 'continuous_variation'" in err


def test_newer_checkpoint_format_and_foreign_files_are_refused(tiny_cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(tiny_cache, run, "--steps", "1", "--checkpoint-every", "1", "--preview-every", "0") == 0
    state = ckpt.load(run / "ckpt-00000001.pt")
    state["version"] = 99
    torch.save(state, run / "ckpt-00000001.pt")
    err = _error(capsys, "train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "2")
    assert "format version 99" in err and "reads up to version 1" in err and "upgrade" in err
    foreign = tmp_path / "other.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(ckpt.CheckpointError, match="not a GestureGAN checkpoint"):
        ckpt.load(foreign)
    foreign.write_bytes(b"garbage")
    with pytest.raises(ckpt.CheckpointError, match="not a readable checkpoint"):
        ckpt.load(foreign)


def test_batch_that_does_not_fit_in_memory_names_the_fix(tiny_cache, tmp_path):
    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    cmd = [sys.executable, "-m", "instrument", "train", str(tiny_cache), "--out", str(tmp_path / "run"), "--model-dim", "4",
           "--batch-size", "20000", "--steps", "1", "--preview-every", "0", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, preexec_fn=limit_memory, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "batch size 20000" in r.stderr and "does not fit" in r.stderr and "--batch-size 10000" in r.stderr


def test_bad_options_name_the_value(tiny_cache, tmp_path, capsys):
    err = _error(capsys, "train", str(tiny_cache), "--out", str(tmp_path / "r"), "--batch-size", "0")
    assert "batch_size must be >= 1, got 0" in err
    with pytest.raises(SystemExit):
        main(["train", str(tiny_cache), "--out", str(tmp_path / "r"), "--upsample", "bicubic"])


def test_config_round_trips_and_is_saved_in_checkpoints(tiny_cache, tmp_path):
    cfg = TrainConfig(cache=str(tiny_cache), out=str(tmp_path / "run"), model_dim=4, batch_size=4, n_critic=1, steps=1,
                      preview_every=0, progress=False)
    assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    t = Trainer(cfg, log=lambda *a: None)
    try:
        t.train()
    finally:
        t.close()
    assert TrainConfig.from_json(ckpt.load(tmp_path / "run" / "ckpt-00000001.pt")["config"]) == cfg


def test_balanced_sampler_draws_every_category_equally():
    from train.trainer import BatchSampler

    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    s = BatchSampler(labels, 3, "balanced", np.random.default_rng(0))
    counts = np.bincount(labels[s.indices(30000)], minlength=3)
    assert np.all(np.abs(counts / 30000 - 1 / 3) < 0.02)
    u = BatchSampler(labels, 3, "uniform", np.random.default_rng(0))
    assert abs(np.mean(labels[u.indices(30000)] == 0) - 0.9) < 0.02


def test_specgan_keeps_its_normalisation_when_the_cache_changes(tiny_cache, corpus_dir, tmp_path, capsys):
    """Resuming on a rebuilt cache (more recordings, other levels) must not change what the generator's
    images mean: the checkpoint's per-bin statistics stay."""
    from train.build import build_cache
    from train.ingest import IngestSettings

    louder = tmp_path / "louder"
    build_cache(corpus_dir, louder, IngestSettings(normalize="clip"), jobs=1, min_clips=1, progress=False)
    run = tmp_path / "run"
    spec_args = ("--arch", "specgan", "--view", "64", "--griffin-lim-iters", "2", "--checkpoint-every", "1", "--preview-every", "0")
    assert _train(tiny_cache, run, *spec_args, "--steps", "1") == 0
    first = ckpt.load(run / "ckpt-00000001.pt")["spectral_stats"]
    assert _train(louder, run, *spec_args, "--steps", "2") == 0
    assert ckpt.load(run / "ckpt-00000002.pt")["spectral_stats"] == first
    with DatasetCache.open(louder) as c:
        assert not np.allclose(c.spectral_stats("64")[0], first[0])


def test_plain_cuda_names_this_process_gpu(monkeypatch):
    """``--device cuda`` once crashed on a GPU machine: torch.cuda.set_device needs an index, and a plain
    "cuda" has none. The device is resolved to this process's GPU (its local rank under torchrun)."""
    from train.errors import TrainingError
    from train.runtime import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TrainingError, match="sees no GPU"):
        select_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("cuda") == torch.device("cuda:0")
    assert select_device("cuda", local_rank=1) == torch.device("cuda:1")
    assert select_device("cuda:2", local_rank=1) == torch.device("cuda:2")
    assert select_device("auto", local_rank=1) == torch.device("cuda:1")
    assert select_device("cpu") == torch.device("cpu")
