"""The model contract (ONNX, version 1): the one definition that ``export`` writes and the engine reads.

A GestureGAN model is one ONNX file with

- inputs ``z`` float32 ``[batch, latent_dim]`` and ``category`` float32 ``[batch, n_categories]``
  (non-negative weights summing to 1: one-hot is a pure category, a mixture interpolates);
- output ``audio`` float32 ``[batch, n_samples]`` in [-1, 1] at ``sample_rate``;
- a dynamic ``batch`` dimension and every other dimension fixed;
- ``metadata_props`` holding the keys of :data:`REQUIRED_KEYS` (all values are strings; numbers in
  decimal, lists and objects as JSON).

:func:`validate_session` checks an onnxruntime session against all of this and returns the parsed
:class:`ModelInfo`, or raises :class:`~instrument.errors.ModelFileError` naming what is wrong. A newer
contract version is refused (:class:`~instrument.errors.ContractVersionError`), never guessed at.

:func:`read_header` reads the file's ONNX header (IR version, producer, opsets, metadata) with a
20-line protobuf scan, so ``gesturegan inspect`` can report them without the ``onnx`` package and can
tell a truncated file from a file that is not ONNX at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ContractVersionError, ModelFileError

CONTRACT_VERSION = 1
INPUT_LATENT = "z"
INPUT_CATEGORY = "category"
OUTPUT_AUDIO = "audio"
FLOAT32 = "tensor(float)"  # how onnxruntime names an ONNX float32 tensor type

LATENT_DISTRIBUTIONS = {
    "uniform": "independent uniform on [-1, 1] (WaveGAN's and SpecGAN's latent)",
    "normal": "independent standard normal",
}

REQUIRED_KEYS: dict[str, str] = {
    "contract_version": "model contract version (integer); this engine reads up to 1",
    "architecture": "the generator's architecture, e.g. wavegan or specgan",
    "sample_rate": "output sample rate in Hz (integer)",
    "n_samples": "samples per generated clip (integer)",
    "latent_dim": "length of z (integer)",
    "latent_distribution": "how z is drawn: " + ", ".join(LATENT_DISTRIBUTIONS),
    "categories": "category names, a JSON list in the order of the category input",
    "training_steps": "generator updates the weights had (integer)",
    "dataset": "a JSON object summarising the training data",
    "created": "creation time, ISO 8601",
}

OPTIONAL_KEYS: dict[str, str] = {
    "precision": "weights as stored: fp32, or fp16 (computed in float32)",
    "parity_rel_error": "largest relative error of onnxruntime against PyTorch found at export",
    "parity_bound": "the bound that relative error was held to",
    "parity_metric": "what that error compares: waveform, or (SpecGAN) spectrogram or magnitude",
    "parity_forced": "true when the file was written although parity failed (--force)",
    "checkpoint": "the checkpoint it was exported from (run folder/file name)",
    "model_spec": "the full model specification (JSON), for reference",
    "producer_version": "the GestureGAN version that wrote the file",
}

PRECISIONS = ("fp32", "fp16")


def _int(meta: Mapping[str, str], key: str, source: str, minimum: int) -> int:
    raw = meta[key]
    try:
        value = int(raw)
    except ValueError:
        raise ModelFileError(f"{source}: metadata '{key}' must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ModelFileError(f"{source}: metadata '{key}' must be >= {minimum}, got {value}")
    return value


def _json(meta: Mapping[str, str], key: str, source: str) -> Any:
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{source}: metadata '{key}' is not valid JSON ({e.msg}): {meta[key][:80]!r}") from None


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself (its contract metadata, parsed and checked)."""

    architecture: str
    sample_rate: int
    n_samples: int
    latent_dim: int
    latent_distribution: str
    categories: tuple[str, ...]
    training_steps: int
    dataset: dict
    created: str
    contract_version: int = CONTRACT_VERSION
    extra: dict[str, str] = field(default_factory=dict)  # optional and unknown keys, verbatim

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @property
    def duration_seconds(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def precision(self) -> str:
        return self.extra.get("precision", "fp32")

    @property
    def parity_forced(self) -> bool:
        return self.extra.get("parity_forced", "false") == "true"

    def to_metadata(self) -> dict[str, str]:
        meta = dict(self.extra)
        meta.update({
            "contract_version": str(self.contract_version),
            "architecture": self.architecture,
            "sample_rate": str(self.sample_rate),
            "n_samples": str(self.n_samples),
            "latent_dim": str(self.latent_dim),
            "latent_distribution": self.latent_distribution,
            "categories": json.dumps(list(self.categories)),
            "training_steps": str(self.training_steps),
            "dataset": json.dumps(self.dataset, sort_keys=True),
            "created": self.created,
        })
        return meta

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "model") -> "ModelInfo":
        """Parse and check ``metadata_props``; raise :class:`ModelFileError` naming the first problem."""
        if "contract_version" not in meta:
            raise ModelFileError(f"{source}: not a GestureGAN model: its metadata has no 'contract_version' "
                                 f"(keys found: {', '.join(sorted(meta)) or 'none'}); export models with 'gesturegan export'")
        version = _int(meta, "contract_version", source, 1)
        if version > CONTRACT_VERSION:
            raise ContractVersionError(f"{source}: made for model contract version {version}; this GestureGAN reads up to "
                                       f"version {CONTRACT_VERSION}: upgrade GestureGAN to play it")
        missing = [k for k in REQUIRED_KEYS if k not in meta]
        if missing:
            raise ModelFileError(f"{source}: metadata lacks {', '.join(repr(k) for k in missing)} "
                                 f"({'; '.join(f'{k}: {REQUIRED_KEYS[k]}' for k in missing)})")
        architecture = meta["architecture"].strip()
        if not architecture:
            raise ModelFileError(f"{source}: metadata 'architecture' is empty")
        dist = meta["latent_distribution"]
        if dist not in LATENT_DISTRIBUTIONS:
            raise ModelFileError(f"{source}: metadata 'latent_distribution' must be one of {', '.join(LATENT_DISTRIBUTIONS)}, got {dist!r}")
        cats = _json(meta, "categories", source)
        if (not isinstance(cats, list) or not cats or not all(isinstance(c, str) and c for c in cats)
                or len(set(cats)) != len(cats)):
            raise ModelFileError(f"{source}: metadata 'categories' must be a JSON list of distinct non-empty names, got {meta['categories'][:80]!r}")
        dataset = _json(meta, "dataset", source)
        if not isinstance(dataset, dict):
            raise ModelFileError(f"{source}: metadata 'dataset' must be a JSON object, got {meta['dataset'][:80]!r}")
        created = meta["created"]
        try:
            datetime.fromisoformat(created)
        except ValueError:
            raise ModelFileError(f"{source}: metadata 'created' must be an ISO 8601 time, got {created!r}") from None
        extra = {k: v for k, v in meta.items() if k not in REQUIRED_KEYS}
        if extra.get("precision", "fp32") not in PRECISIONS:
            raise ModelFileError(f"{source}: metadata 'precision' must be one of {', '.join(PRECISIONS)}, got {extra['precision']!r}")
        if extra.get("parity_forced", "false") not in ("true", "false"):
            raise ModelFileError(f"{source}: metadata 'parity_forced' must be true or false, got {extra['parity_forced']!r}")
        return cls(
            architecture=architecture, sample_rate=_int(meta, "sample_rate", source, 1), n_samples=_int(meta, "n_samples", source, 1),
            latent_dim=_int(meta, "latent_dim", source, 1), latent_distribution=dist, categories=tuple(cats),
            training_steps=_int(meta, "training_steps", source, 0), dataset=dataset, created=created, contract_version=version,
            extra=extra,
        )

    def sample_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``[n, latent_dim]`` float32 drawn from the model's latent distribution."""
        if self.latent_distribution == "uniform":
            return rng.uniform(-1.0, 1.0, (n, self.latent_dim)).astype(np.float32)
        return rng.standard_normal((n, self.latent_dim), dtype=np.float32)


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output as onnxruntime reports it: ``shape`` holds ints for fixed dimensions
    and strings (or None) for dynamic ones."""

    name: str
    type: str
    shape: tuple[int | str | None, ...]

    @classmethod
    def from_node_arg(cls, arg: Any) -> "TensorSpec":
        return cls(arg.name, arg.type, tuple(arg.shape))

    def describe(self) -> str:
        dims = ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in self.shape)
        return f"{self.name} {self.type} [{dims}]"


def _check_tensor(found: TensorSpec | None, name: str, width: int, what: str, source: str, fixed_width: bool) -> None:
    if found is None:
        raise ModelFileError(f"{source}: the graph has no {what} named '{name}'")
    if found.type != FLOAT32:
        raise ModelFileError(f"{source}: {what} '{name}' is {found.type}, the contract needs {FLOAT32} (float32)")
    if len(found.shape) != 2:
        raise ModelFileError(f"{source}: {what} '{name}' has shape {found.describe()}, the contract needs [batch, {width}]")
    batch, dim = found.shape
    if isinstance(batch, int):
        raise ModelFileError(f"{source}: {what} '{name}' has a fixed batch size {batch}; the contract needs a dynamic batch dimension")
    if isinstance(dim, int) and dim != width or (fixed_width and not isinstance(dim, int)):
        raise ModelFileError(f"{source}: {what} '{name}' has shape {found.describe()}; the metadata says it should be [batch, {width}]")


def check_io(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], info: ModelInfo, source: str = "model") -> None:
    """Check the graph's inputs and outputs against the contract and the model's own metadata."""
    by_name = {t.name: t for t in inputs}
    _check_tensor(by_name.get(INPUT_LATENT), INPUT_LATENT, info.latent_dim, "input", source, fixed_width=True)
    _check_tensor(by_name.get(INPUT_CATEGORY), INPUT_CATEGORY, info.n_categories, "input", source, fixed_width=True)
    extra = sorted(set(by_name) - {INPUT_LATENT, INPUT_CATEGORY})
    if extra:
        raise ModelFileError(f"{source}: the graph has inputs the contract does not know: {', '.join(extra)} "
                             f"(it takes only '{INPUT_LATENT}' and '{INPUT_CATEGORY}')")
    outs = {t.name: t for t in outputs}
    _check_tensor(outs.get(OUTPUT_AUDIO), OUTPUT_AUDIO, info.n_samples, "output", source, fixed_width=True)
    if len(outputs) != 1:
        raise ModelFileError(f"{source}: the graph has {len(outputs)} outputs ({', '.join(outs)}); the contract has one, '{OUTPUT_AUDIO}'")


def validate_session(session: Any, source: str = "model") -> ModelInfo:
    """Check an ``onnxruntime.InferenceSession`` against the contract; return its :class:`ModelInfo`."""
    info = ModelInfo.from_metadata(dict(session.get_modelmeta().custom_metadata_map), source)
    check_io([TensorSpec.from_node_arg(a) for a in session.get_inputs()],
             [TensorSpec.from_node_arg(a) for a in session.get_outputs()], info, source)
    return info


def check_category_weights(category: np.ndarray, n_categories: int, tolerance: float = 1e-3) -> None:
    """Raise ``ValueError`` unless ``category : [B, n_categories]`` holds non-negative rows summing to 1."""
    if category.ndim != 2 or category.shape[1] != n_categories:
        raise ValueError(f"category must have shape [batch, {n_categories}], got {list(category.shape)}")
    if not np.all(np.isfinite(category)) or np.any(category < 0):
        raise ValueError("category weights must be finite and non-negative")
    sums = category.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > tolerance):
        raise ValueError(f"category weights must sum to 1 in every row, got sums {np.round(sums, 4).tolist()}")


# --- the ONNX header, read without the onnx package ------------------------------------------------------------------


@dataclass(frozen=True)
class OnnxHeader:
    """The top of an ONNX ``ModelProto``: what ``gesturegan inspect`` prints besides the graph's inputs."""

    ir_version: int
    producer: str
    opsets: dict[str, int]  # domain ("" is the default ONNX domain) -> version
    metadata: dict[str, str]

    @property
    def opset(self) -> int | None:
        return self.opsets.get("") or self.opsets.get("ai.onnx")


class _Truncated(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Truncated
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterable[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` for each top-level field of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > len(buf):
                raise _Truncated
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _Truncated
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def read_header(data: bytes, source: str = "model") -> OnnxHeader:
    """Parse an ONNX file's ``ModelProto`` header fields. Raises :class:`ModelFileError` for an empty,
    truncated or non-ONNX file, saying which."""
    if not data:
        raise ModelFileError(f"{source}: the file is empty (0 bytes)")
    ir_version, producer, opsets, metadata, has_graph = None, "", {}, {}, False
    try:
        for number, wire, value in _fields(data):
            if number == 1 and wire == 0:
                ir_version = value
            elif number == 2 and wire == 2:
                producer = value.decode("utf-8", "replace")
            elif number == 7 and wire == 2:
                has_graph = True
            elif number == 8 and wire == 2:  # OperatorSetIdProto {1: domain, 2: version}
                sub = {n: v for n, _, v in _fields(value)}
                opsets[sub.get(1, b"").decode("utf-8", "replace")] = int(sub.get(2, 0))
            elif number == 14 and wire == 2:  # StringStringEntryProto {1: key, 2: value}
                sub = {n: v for n, _, v in _fields(value)}
                metadata[sub.get(1, b"").decode("utf-8", "replace")] = sub.get(2, b"").decode("utf-8", "replace")
    except _Truncated:
        if ir_version is None:  # every ONNX writer puts ir_version (field 1) first
            raise ModelFileError(f"{source}: not an ONNX model (it does not start with an ONNX header)") from None
        raise ModelFileError(f"{source}: the file is truncated ({len(data)} bytes end inside an ONNX field); "
                             "copy or export it again") from None
    except (ValueError, AttributeError) as e:
        raise ModelFileError(f"{source}: not an ONNX model (the bytes are not an ONNX protobuf: {e})") from None
    if ir_version is None or not has_graph:
        raise ModelFileError(f"{source}: not an ONNX model (no {'IR version' if ir_version is None else 'graph'} in it)")
    return OnnxHeader(ir_version, producer, opsets, metadata)

