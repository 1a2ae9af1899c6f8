"""Hand-built ONNX files that keep (or break, one way at a time) the model contract, made with the
onnx package's helpers: small enough to build per test, real enough for onnxruntime to run."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LATENT, CATS, SAMPLES = 8, 3, 64


def metadata(**override: str | None) -> dict[str, str]:
    meta = {
        "contract_version": "1", "architecture": "wavegan", "sample_rate": "16000", "n_samples": str(SAMPLES),
        "latent_dim": str(LATENT), "latent_distribution": "uniform", "categories": json.dumps(["hit", "ring", "swell"]),
        "training_steps": "100", "dataset": json.dumps({"clips": 12}), "created": "2026-11-21T07:00:00+00:00",
    }
    meta.update(override)
    return {k: v for k, v in meta.items() if v is not None}


def contract_model(meta: dict[str, str] | None = None, *, z_name: str = "z", z_type: int = TensorProto.FLOAT,
                   batch: int | str = "batch", latent: int = LATENT, extra_input: bool = False, out_width: int = SAMPLES,
                   declared_width: int | str | None = None, scale: float = 1.0, out_name: str = "audio",
                   squash: bool = True, n_categories: int = CATS) -> onnx.ModelProto:
    """``audio = tanh(scale * (z @ A + category @ B))``, a generator in miniature (``squash=False``
    drops the tanh, ``scale=nan`` makes a model that outputs NaN)."""
    rng = np.random.default_rng(0)
    full = max(out_width, declared_width if isinstance(declared_width, int) else 0)
    a = numpy_helper.from_array(rng.standard_normal((latent, full)).astype(np.float32), "A")
    b = numpy_helper.from_array(rng.standard_normal((n_categories, full)).astype(np.float32), "B")
    s = numpy_helper.from_array(np.array(scale, np.float32), "S")
    nodes = [
        helper.make_node("Cast", [z_name], ["zf"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["zf", "A"], ["za"]),
        helper.make_node("MatMul", ["category", "B"], ["cb"]),
        helper.make_node("Add", ["za", "cb"], ["pre"]),
        helper.make_node("Mul", ["pre", "S"], ["scaled"]),
        helper.make_node("Tanh" if squash else "Identity", ["scaled"], ["tanh"]),
    ]
    if declared_width is not None and declared_width != out_width:
        # a width that depends on the input's values, so no shape inference can know it: the graph can lie
        def const(name, value, dtype):
            return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype)))

        nodes += [const("zero", [0.0], np.float32), const("width", [float(out_width)], np.float32), const("starts", [0], np.int64),
                  const("axes", [1], np.int64), helper.make_node("ReduceMax", ["category"], ["cmax"], keepdims=0),
                  helper.make_node("Mul", ["cmax", "zero"], ["c0"]), helper.make_node("Add", ["c0", "width"], ["endf"]),
                  helper.make_node("Cast", ["endf"], ["ends"], to=TensorProto.INT64),
                  helper.make_node("Slice", ["tanh", "starts", "ends", "axes"], [out_name])]
    else:
        nodes.append(helper.make_node("Identity", ["tanh"], [out_name]))
    inputs = [helper.make_tensor_value_info(z_name, z_type, [batch, latent]),
              helper.make_tensor_value_info("category", TensorProto.FLOAT, [batch, n_categories])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("temperature", TensorProto.FLOAT, [1]))
    width = out_width if declared_width is None else declared_width
    outputs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [batch, width])]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=[a, b, s])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tests")
    model.ir_version = 8
    for k, v in (metadata() if meta is None else meta).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    return model


def contract_bytes(meta: dict[str, str] | None = None, **kw) -> bytes:
    return contract_model(meta, **kw).SerializeToString()


def engine_model(n_samples: int = 8192, sample_rate: int = 16000, categories: list[str] | None = None, **kw):
    """A loaded tiny model with clips long enough to play: for engine tests."""
    from instrument.model import load_model_bytes

    meta = metadata(n_samples=str(n_samples), sample_rate=str(sample_rate))
    if categories is not None:
        meta["categories"] = json.dumps(categories)
        kw["n_categories"] = len(categories)
    kw.setdefault("scale", 0.3)
    return load_model_bytes(contract_bytes(meta, out_width=n_samples, **kw), "tiny.onnx", provider="cpu", threads=1)


GESTURES = ["trigger", "trigger_continuous", "continuous_variation", "continuous_repetition"]


def engine_model_file(path, n_samples: int = 8192, sample_rate: int = 16000, categories: list[str] | None = None, **kw):
    meta = metadata(n_samples=str(n_samples), sample_rate=str(sample_rate))
    if categories is not None:
        meta["categories"] = json.dumps(categories)
        kw["n_categories"] = len(categories)
    kw.setdefault("scale", 0.3)
    path.write_bytes(contract_bytes(meta, out_width=n_samples, **kw))
    return path
