"""The model contract: a good file is accepted and described; each kind of malformed file is refused
with a message naming what is wrong."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from instrument.contract import REQUIRED_KEYS, ModelInfo, check_category_weights, read_header
from instrument.errors import ContractVersionError, ModelFileError
from instrument.model import load_model, load_model_bytes

from .onnx_models import CATS, LATENT, SAMPLES, contract_bytes, contract_model, metadata


def test_a_good_model_loads_and_describes_itself(tmp_path):
    path = tmp_path / "good.onnx"
    path.write_bytes(contract_bytes())
    with load_model(path, provider="cpu") as model:
        info = model.info
        assert (info.architecture, info.sample_rate, info.n_samples, info.latent_dim) == ("wavegan", 16000, SAMPLES, LATENT)
        assert info.categories == ("hit", "ring", "swell") and info.training_steps == 100 and info.dataset == {"clips": 12}
        assert info.precision == "fp32" and not info.parity_forced and model.provider == "cpu"
        assert model.warmup_seconds is not None
        out = model.generate(info.sample_latents(5, np.random.default_rng(0)), np.eye(CATS, dtype=np.float32)[[0, 1, 2, 0, 1]])
        assert out.shape == (5, SAMPLES) and out.dtype == np.float32


def test_metadata_round_trip():
    info = ModelInfo.from_metadata(metadata(precision="fp16", extra_key="kept"), "m")
    assert info.extra == {"precision": "fp16", "extra_key": "kept"}
    assert ModelInfo.from_metadata(info.to_metadata(), "m") == info


@pytest.mark.parametrize("key", list(REQUIRED_KEYS))
def test_each_missing_metadata_key_is_named(key):
    data = contract_bytes(metadata(**{key: None}))
    expect = "not a GestureGAN model" if key == "contract_version" else f"metadata lacks '{key}'"
    with pytest.raises(ModelFileError, match=expect):
        load_model_bytes(data, "m.onnx", provider="cpu")


@pytest.mark.parametrize("override, message", [
    ({"contract_version": "one"}, "'contract_version' must be an integer, got 'one'"),
    ({"sample_rate": "0"}, "'sample_rate' must be >= 1, got 0"),
    ({"latent_distribution": "gaussian"}, "'latent_distribution' must be one of uniform, normal, got 'gaussian'"),
    ({"categories": "hit,ring,swell"}, "'categories' is not valid JSON"),
    ({"categories": json.dumps(["hit", "hit", "swell"])}, "distinct non-empty names"),
    ({"dataset": "[]"}, "'dataset' must be a JSON object"),
    ({"created": "yesterday"}, "'created' must be an ISO 8601 time"),
    ({"architecture": " "}, "'architecture' is empty"),
    ({"precision": "int8"}, "'precision' must be one of fp32, fp16"),
    ({"parity_forced": "yes"}, "'parity_forced' must be true or false"),
    ({"categories": json.dumps(["hit", "ring"])}, r"input 'category' has shape .* should be \[batch, 2\]"),
    ({"latent_dim": "16"}, r"input 'z' has shape .* should be \[batch, 16\]"),
    ({"n_samples": "128"}, r"output 'audio' has shape .* should be \[batch, 128\]"),
])
def test_bad_metadata_values_are_named(override, message):
    with pytest.raises(ModelFileError, match=message):
        load_model_bytes(contract_bytes(metadata(**override)), "m.onnx", provider="cpu")


def test_a_newer_contract_version_is_refused_not_guessed():
    with pytest.raises(ContractVersionError, match="contract version 2; this GestureGAN reads up to version 1"):
        load_model_bytes(contract_bytes(metadata(contract_version="2")), "m.onnx", provider="cpu")


@pytest.mark.parametrize("kw, message", [
    (dict(z_name="latent"), "the graph has no input named 'z'"),
    (dict(z_type=TensorProto.DOUBLE), r"input 'z' is tensor\(double\), the contract needs tensor\(float\)"),
    (dict(batch=4), "fixed batch size 4; the contract needs a dynamic batch dimension"),
    (dict(extra_input=True), "inputs the contract does not know: temperature"),
    (dict(out_name="wave"), "the graph has no output named 'audio'"),
])
def test_wrong_inputs_and_outputs_are_named(kw, message):
    with pytest.raises(ModelFileError, match=message):
        load_model_bytes(contract_bytes(**kw), "m.onnx", provider="cpu")


def test_a_graph_that_lies_about_its_output_width_is_caught_by_the_warm_up():
    data = contract_bytes(out_width=SAMPLES // 2, declared_width=SAMPLES)
    with pytest.raises(ModelFileError, match=rf"produced float32 \[1, {SAMPLES // 2}\]; its metadata promises float32 \[1, {SAMPLES}\]"):
        load_model_bytes(data, "m.onnx", provider="cpu")


@pytest.mark.parametrize("keep", [0.02, 0.3, 0.6, 0.95])
def test_truncated_files_are_called_truncated(keep, tmp_path):
    data = contract_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: max(4, int(len(data) * keep))])
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(path, provider="cpu")


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100), "not an ONNX model"),
    (b"<html><body>404</body></html>", "not an ONNX model"),
    (bytes(range(256)) * 4, "not an ONNX model"),
])
def test_files_that_are_not_onnx(content, message, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        load_model(path, provider="cpu")


def test_a_plain_onnx_model_without_metadata_is_not_a_gesturegan_model():
    with pytest.raises(ModelFileError, match="not a GestureGAN model: its metadata has no 'contract_version'"):
        load_model_bytes(contract_bytes({}), "m.onnx", provider="cpu")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(ModelFileError, match="it is a folder"):
        load_model(tmp_path)


def test_header_reader_agrees_with_the_onnx_package():
    model = contract_model(metadata(extra="x"))
    header = read_header(model.SerializeToString(), "m")
    assert header.ir_version == model.ir_version and header.producer == "tests" and header.opset == 17
    assert header.metadata == {p.key: p.value for p in model.metadata_props}


def test_category_weight_check():
    check_category_weights(np.array([[0.25, 0.75, 0.0]], np.float32), 3)
    with pytest.raises(ValueError, match="sum to 1"):
        check_category_weights(np.array([[0.5, 0.6, 0.0]]), 3)
    with pytest.raises(ValueError, match="non-negative"):
        check_category_weights(np.array([[1.5, -0.5, 0.0]]), 3)
    with pytest.raises(ValueError, match=r"shape \[batch, 3\]"):
        check_category_weights(np.ones((1, 2)) / 2, 3)


def test_onnx_checker_accepts_the_fixtures():
    onnx.checker.check_model(contract_model())  # the refusals above come from our checks, not from a broken fixture
