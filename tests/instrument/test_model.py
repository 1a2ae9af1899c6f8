"""The engine-side loader: session options that suit real time, providers, input checks, and the
inspect command (good files and every kind of bad one, as one line each)."""

from __future__ import annotations

import numpy as np
import pytest

from instrument.errors import ProviderError
from instrument.main import main
from instrument.model import cuda_status, default_threads, load_model_bytes, open_session, session_options

from .onnx_models import CATS, LATENT, SAMPLES, contract_bytes, metadata


def test_session_options_turn_spinning_off_and_bound_threads():
    so = session_options(2)
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    import onnxruntime as ort

    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert 1 <= default_threads() <= 4 and session_options().intra_op_num_threads == default_threads()


def test_auto_provider_falls_back_to_cpu_and_says_what_it_got():
    session, used, note = open_session(contract_bytes(), "auto")
    assert used in ("cpu", "cuda") and session.get_providers()[0] == {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[used]
    if used == "cpu" and cuda_status()[0]:
        assert "CUDA" in note  # the provider exists and a driver is there, so the fallback is explained


def test_asking_for_cuda_where_it_cannot_work_is_a_clear_error():
    if cuda_status()[0]:
        pytest.skip("this machine has an NVIDIA driver; the refusal path needs one without")
    with pytest.raises(ProviderError, match="--provider cuda: .*use --provider cpu or auto"):
        open_session(contract_bytes(), "cuda")
    with pytest.raises(ProviderError, match="provider must be one of auto, cpu, cuda"):
        open_session(contract_bytes(), "tpu")


def test_generate_checks_shapes_and_converts_dtypes():
    with load_model_bytes(contract_bytes(), "m", provider="cpu") as model:
        out = model.generate(np.zeros((2, LATENT)), np.full((2, CATS), 1 / 3))  # float64 in: converted
        assert out.shape == (2, SAMPLES) and out.dtype == np.float32
        with pytest.raises(ValueError, match=rf"z must have shape \[batch, {LATENT}\], got \[2, 5\]"):
            model.generate(np.zeros((2, 5)), np.zeros((2, CATS)))
        with pytest.raises(ValueError, match=rf"category must have shape \[2, {CATS}\]"):
            model.generate(np.zeros((2, LATENT)), np.zeros((3, CATS)))
    assert model.closed
    model.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        model.generate(np.zeros((1, LATENT)), np.zeros((1, CATS)))


def test_normal_latents_follow_the_metadata():
    with load_model_bytes(contract_bytes(metadata(latent_distribution="normal")), "m", provider="cpu") as model:
        z = model.info.sample_latents(2000, np.random.default_rng(0))
        assert abs(z.std() - 1) < 0.05 and z.min() < -2.5


def test_inspect_prints_the_model(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(contract_bytes(metadata(parity_rel_error="1.2e-07", parity_bound="1e-04", parity_metric="waveform")))
    assert main(["inspect", str(path), "--runs", "3", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    for expected in ("ONNX IR version 8, opset ai.onnx 17, produced by tests", "model contract version 1: wavegan",
                     "categories (3): hit, ring, swell", f"input   z tensor(float) [batch, {LATENT}]",
                     f"output  audio tensor(float) [batch, {SAMPLES}]", "export parity: 1.2e-07 (waveform) <= 1e-04",
                     "timing, batch 2, median of 3", "  cpu ", "x real time"):
        assert expected in out, (expected, out)
    assert "cuda" in out  # either timed or "not available: <why>"


@pytest.mark.parametrize("content, message", [
    (None, "no such model file"),
    (b"", "the file is empty"),
    (b"not a model at all, just text", "not an ONNX model"),
    ("truncated", "truncated"),
    ("future", "contract version 9"),
    ("no-input", "no input named 'z'"),
])
def test_inspect_refuses_bad_files_in_one_line(content, message, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    if content == "truncated":
        content = contract_bytes()[:300]
    elif content == "future":
        content = contract_bytes(metadata(contract_version="9"))
    elif content == "no-input":
        content = contract_bytes(z_name="noise")
    if content is not None:
        path.write_bytes(content)
    assert main(["inspect", str(path), "--runs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gesturegan: error: ") and message in err and len(err.strip().splitlines()) == 1, err


def test_inspect_with_cuda_forced_where_it_cannot_work(tmp_path, capsys):
    if cuda_status()[0]:
        pytest.skip("this machine has an NVIDIA driver")
    path = tmp_path / "m.onnx"
    path.write_bytes(contract_bytes())
    assert main(["inspect", str(path), "--provider", "cuda"]) == 2
    assert "--provider cuda" in capsys.readouterr().err
