"""Export: every architecture and upsampling mode, parity with PyTorch, dynamic batch, metadata, fp16,
and the refusals (NaN weights, failed parity, foreign or missing checkpoints)."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import onnx
import pytest
import torch

import export.onnx_export as ox
from export.onnx_export import ExportError, export_model, relative_errors
from instrument.contract import CONTRACT_VERSION, REQUIRED_KEYS
from instrument.main import main
from instrument.model import load_model
from train.checkpoint import load_synthesizer
from train.errors import CheckpointError, ModelError

from ..train.conftest import TINY, gesturegan
from .conftest import CATEGORIES, write_checkpoint

VARIANTS = {
    "wavegan-transpose": dict(upsample="transpose"),
    "wavegan-nearest": dict(upsample="nearest"),
    "wavegan-subpixel-postfilter": dict(upsample="subpixel", post_filter_taps=16),
    "wavegan-32768": dict(n_samples=32768, upsample="subpixel"),
    "wavegan-tied-film-envelope": dict(upsample="tied", conditioning="film", envelope=True),
    "wavegan-balanced-film-envelope": dict(upsample="balanced", conditioning="film", envelope=True),
    "wavegan-oscillators": dict(upsample="balanced", conditioning="film", envelope=True, oscillators=16, noise_level=True,
                                partials="bounded"),
    "wavegan-softmax-partials": dict(upsample="balanced", conditioning="film", envelope=True, oscillators=16, partials="softmax"),
    "wavegan-debuzz": dict(upsample="balanced", conditioning="film", envelope=True, oscillators=16, debuzz=129),
    "specgan-128": dict(architecture="specgan", view="128", griffin_lim_iters=8),
    "specgan-64": dict(architecture="specgan", view="64", griffin_lim_iters=8),
}


def torch_reference(ckpt, z, cat, griffin_lim_iters=None):
    synth, spec, _ = load_synthesizer(ckpt)
    if griffin_lim_iters is not None and spec.architecture == "specgan":
        from dataclasses import replace

        from train.models import Synthesizer

        old = synth.to_audio
        synth = Synthesizer(replace(spec, griffin_lim_iters=griffin_lim_iters), synth.generator,
                            (old.mean.flatten().numpy(), old.std.flatten().numpy())).eval()
    with torch.no_grad():
        return torch.clamp(synth(torch.from_numpy(z), torch.from_numpy(cat)), -1, 1).numpy()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_export_parity_and_dynamic_batch(variant, checkpoint, tmp_path):
    kw = VARIANTS[variant]
    ckpt = checkpoint(**kw)
    iters = 8 if kw.get("architecture") == "specgan" else None
    report = export_model(ckpt, tmp_path / "m.onnx", griffin_lim_iters=iters, seed=1)
    assert report.passed and not report.forced
    assert set(report.errors) == set(ox.PARITY_BOUNDS[(report.info.architecture, "fp32")])
    for metric, cases in report.errors.items():
        assert set(cases) == {"pure", "mixed", "batch1"}
        assert max(cases.values()) <= report.bounds[metric]
    if report.info.architecture == "wavegan":
        assert report.worst["waveform"] <= 1e-4  # the bound for fp32 WaveGAN
    else:
        assert report.worst["spectrogram"] <= 1e-4
    rng = np.random.default_rng(5)
    with load_model(tmp_path / "m.onnx", provider="cpu") as model:
        assert model.info.n_samples == kw.get("n_samples", 16384)
        for batch in (1, 3, 8):
            z = model.info.sample_latents(batch, rng)
            cat = rng.dirichlet(np.ones(4), size=batch).astype(np.float32)
            got = model.generate(z, cat)
            assert got.shape == (batch, model.info.n_samples) and got.dtype == np.float32
            assert np.abs(got).max() <= 1.0
            ref = torch_reference(ckpt, z, cat, iters)
            bound = 1e-4 if model.info.architecture == "wavegan" else 5e-2  # SpecGAN: raw waveform after 8 GL iterations
            assert relative_errors(got, ref).max() <= bound


def test_metadata_round_trip(checkpoint, tmp_path):
    ckpt = checkpoint(upsample="subpixel")
    report = export_model(ckpt, tmp_path / "m.onnx", seed=0)
    proto = onnx.load(tmp_path / "m.onnx")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert set(REQUIRED_KEYS) <= set(meta)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert meta["contract_version"] == str(CONTRACT_VERSION) and meta["architecture"] == "wavegan"
    assert json.loads(meta["categories"]) == list(CATEGORIES)
    assert meta["sample_rate"] == "16000" and meta["n_samples"] == "16384" and meta["latent_dim"] == "100"
    assert meta["latent_distribution"] == "uniform" and meta["training_steps"] == "7"
    assert json.loads(meta["dataset"])["counts"] == {c: 6 for c in CATEGORIES}
    assert datetime.fromisoformat(meta["created"]).tzinfo is not None
    assert meta["precision"] == "fp32" and meta["parity_forced"] == "false"
    assert float(meta["parity_rel_error"]) == pytest.approx(report.worst["waveform"], rel=1e-2)
    assert json.loads(meta["model_spec"])["upsample"] == "subpixel"
    with load_model(tmp_path / "m.onnx", provider="cpu", warmup=False) as model:
        assert model.info == report.info
        assert model.info.categories == CATEGORIES and model.info.training_steps == 7


@pytest.mark.parametrize("upsample", ["transpose", "balanced"])
def test_fp16_halves_the_file_and_reports_its_cost(checkpoint, tmp_path, upsample):
    ckpt = checkpoint(model_dim=8, upsample=upsample)  # balanced: its weights are stored as computed, so they halve too
    full = export_model(ckpt, tmp_path / "full.onnx", seed=3)
    half = export_model(ckpt, tmp_path / "half.onnx", half=True, seed=3)
    assert half.precision == "fp16" and half.info.precision == "fp16"
    assert half.size_bytes < 0.55 * full.size_bytes
    # the cost is real (fp16 rounding is far above float32 summation noise) and within the stated bound
    assert full.worst["waveform"] < 1e-5 < half.worst["waveform"] <= ox.PARITY_BOUNDS[("wavegan", "fp16")]["waveform"]
    proto = onnx.load(tmp_path / "half.onnx")
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in proto.graph.initializer)
    with load_model(tmp_path / "half.onnx", provider="cpu") as model:  # inputs and outputs stay float32
        assert model.generate(np.zeros((2, 100), np.float32), np.eye(4, dtype=np.float32)[:2]).dtype == np.float32


def test_specgan_fp16_keeps_the_dft_kernels_in_float32(checkpoint, tmp_path):
    ckpt = checkpoint(architecture="specgan", view="64", model_dim=4)
    report = export_model(ckpt, tmp_path / "half.onnx", half=True, griffin_lim_iters=4, seed=2)
    assert report.passed and report.info.precision == "fp16"
    proto = onnx.load(tmp_path / "half.onnx")
    halves = [i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert halves and all(n.startswith("inner.generator.") for n in halves)


def test_griffin_lim_constants_are_stored_once(checkpoint, tmp_path):
    ckpt = checkpoint(architecture="specgan", view="64")
    few = export_model(ckpt, tmp_path / "few.onnx", griffin_lim_iters=2, seed=0).size_bytes
    many = export_model(ckpt, tmp_path / "many.onnx", griffin_lim_iters=32, seed=0).size_bytes
    # each iteration adds ~100 small nodes (~17 kB), not another copy of the 0.26 MB DFT kernels (before: 8.9 MB of copies)
    assert (many - few) / 30 < 64_000


def test_nan_weights_are_refused(tmp_path):
    ckpt = tmp_path / "run" / "ckpt-00000007.pt"

    def poison(weights):
        weights["dense.weight"][0, 0] = float("nan")

    write_checkpoint(ckpt, corrupt=poison)
    with pytest.raises(ExportError, match=r"NaN/Inf weights in .*dense\.weight"):
        export_model(ckpt, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_failed_parity_writes_nothing_unless_forced(checkpoint, tmp_path, monkeypatch, capsys):
    ckpt = checkpoint()
    monkeypatch.setitem(ox.PARITY_BOUNDS, ("wavegan", "fp32"), {"waveform": 0.0})
    with pytest.raises(ExportError, match="parity check failed.*not written"):
        export_model(ckpt, tmp_path / "m.onnx", seed=0)
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.glob(".*.tmp"))
    report = export_model(ckpt, tmp_path / "m.onnx", seed=0, force=True)
    assert report.forced and not report.passed
    with load_model(tmp_path / "m.onnx", provider="cpu", warmup=False) as model:
        assert model.info.parity_forced
    assert main(["inspect", str(tmp_path / "m.onnx"), "--runs", "1", "--provider", "cpu"]) == 0
    assert "parity FAILED" in capsys.readouterr().out


def test_debuzz_goes_on_and_off_a_checkpoint_at_export(checkpoint, tmp_path):
    from train.metrics import periodic_artefact_db

    ckpt = checkpoint(upsample="transpose")  # the paper's layers: a loud buzz at fs/16's multiples from the start
    plain = export_model(ckpt, tmp_path / "plain.onnx", seed=0)
    combed = export_model(ckpt, tmp_path / "combed.onnx", seed=0, debuzz=129)
    assert plain.passed and combed.passed and combed.worst["waveform"] <= 1e-4
    assert any("notch comb: 129 periods (trained with none" in n for n in combed.notes)
    meta = {p.key: p.value for p in onnx.load(tmp_path / "combed.onnx").metadata_props}
    assert json.loads(meta["model_spec"])["debuzz"] == 129
    rng = np.random.default_rng(0)
    z, cat = rng.uniform(-1, 1, (16, 100)).astype(np.float32), np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]
    with load_model(tmp_path / "plain.onnx", provider="cpu") as a, load_model(tmp_path / "combed.onnx", provider="cpu") as b:
        buzzed, clean = a.generate(z, cat), b.generate(z, cat)
    assert periodic_artefact_db(buzzed) > 20 and periodic_artefact_db(clean) < 0
    # and off again: --debuzz 0 on a checkpoint trained with the comb
    combed_ckpt = checkpoint(upsample="balanced", debuzz=65)
    off = export_model(combed_ckpt, tmp_path / "off.onnx", seed=0, debuzz=0)
    assert json.loads({p.key: p.value for p in onnx.load(tmp_path / "off.onnx").metadata_props}["model_spec"])["debuzz"] == 0
    assert any("notch comb: off (trained with 65 periods" in n for n in off.notes)
    with pytest.raises(ModelError, match="SpecGAN"):
        export_model(checkpoint(architecture="specgan", view="64"), tmp_path / "s.onnx", griffin_lim_iters=2, debuzz=129)


@pytest.mark.parametrize("periods, why", [(128, "odd number"), (-1, "odd number"), (2001, "clips longer than that")])
def test_export_refuses_a_debuzz_that_does_not_fit_with_the_reason(checkpoint, tmp_path, capsys, periods, why):
    assert main(["export", str(checkpoint()), "-o", str(tmp_path / "m.onnx"), "--debuzz", str(periods)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gesturegan: error: ") and why in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_griffin_lim_iterations_only_for_specgan(checkpoint, tmp_path):
    with pytest.raises(ExportError, match="applies to SpecGAN"):
        export_model(checkpoint(), tmp_path / "m.onnx", griffin_lim_iters=8)
    with pytest.raises(ExportError, match="between 0 and 1000"):
        export_model(checkpoint(architecture="specgan"), tmp_path / "m.onnx", griffin_lim_iters=-1)


def test_foreign_missing_and_unknown_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_model(tmp_path / "nope.pt", tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="holds no checkpoints"):
        (tmp_path / "empty_run").mkdir()
        export_model(tmp_path / "empty_run", tmp_path / "m.onnx")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a GestureGAN checkpoint"):
        export_model(tmp_path / "foreign.pt", tmp_path / "m.onnx")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x08")
    with pytest.raises(ExportError, match="already an exported model"):
        export_model(tmp_path / "model.onnx", tmp_path / "m.onnx")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        export_model(tmp_path / "text.pt", tmp_path / "m.onnx")
    ckpt = tmp_path / "run" / "ckpt-00000001.pt"
    write_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)
    state["spec"]["architecture"] = "melgan"
    torch.save(state, ckpt)
    with pytest.raises(ModelError, match="architecture must be one of wavegan, specgan, got 'melgan'"):
        export_model(ckpt, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("case", ["missing", "foreign", "unknown-architecture", "nan"])
def test_cli_errors_are_one_line(case, tmp_path, capsys):
    ckpt = tmp_path / "run" / "ckpt-00000001.pt"
    if case == "foreign":
        ckpt.parent.mkdir()
        torch.save([1, 2, 3], ckpt)
    elif case == "unknown-architecture":
        write_checkpoint(ckpt)
        state = torch.load(ckpt, weights_only=False)
        state["spec"]["architecture"] = "melgan"
        torch.save(state, ckpt)
    elif case == "nan":
        write_checkpoint(ckpt, corrupt=lambda w: w["dense.bias"].fill_(float("inf")))
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gesturegan: error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_trained_run_exports_and_inspects_through_the_command(tiny_cache, tmp_path):
    """The real chain: one training step with the trainer, export of the run folder, inspect."""
    run = tmp_path / "run"
    r = gesturegan("train", str(tiny_cache), "--out", str(run), "--steps", "1", "--checkpoint-every", "1", *TINY)
    assert r.returncode == 0, r.stderr
    r = gesturegan("export", str(run), "--seed", "4")
    assert r.returncode == 0, r.stderr
    assert "waveform" in r.stdout and ": ok" in r.stdout and (run / "model.onnx").is_file()
    r = gesturegan("inspect", str(run / "model.onnx"), "--runs", "3")
    assert r.returncode == 0, r.stderr
    for expected in ("opset ai.onnx 17", "model contract version 1: wavegan", "input   z tensor(float) [batch, 100]",
                     "output  audio tensor(float) [batch, 16384]", "trained 1 steps", "cpu ", "x real time"):
        assert expected in r.stdout, (expected, r.stdout)
