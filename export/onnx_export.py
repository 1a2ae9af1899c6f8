"""Checkpoint -> one self-describing ONNX file, proven equal to PyTorch before it is written.

The steps of :func:`export_model`:

1. Load the generator from a checkpoint (or a run folder's ``best.pt``); refuse NaN/Inf weights.
2. Wrap it as the model contract (``instrument.contract``): ``z``, ``category`` in, ``audio`` out, batch
   dynamic. SpecGAN's graph carries the de-normalisation (the dataset's per-bin statistics as
   constants), the magnitude and an unrolled Griffin-Lim whose STFT/ISTFT are fixed DFT convolutions.
   Exported with the TorchScript-based exporter at opset 17 (torch's dynamo exporter starts at opset 18
   and cannot convert these graphs down to 17).
3. Optionally store the generator's weights as fp16 (``half``): each becomes an fp16 initializer and a
   Cast to float32, which onnxruntime folds away at load, so the file halves and the maths stays fp32.
4. Write the contract metadata; open the bytes with the engine's own loader (``instrument.model``),
   which validates them against the contract: one definition, two users.
5. **Parity**: run onnxruntime (CPU) and PyTorch on fresh random latents with pure and mixed
   categories and at batch 1 (:data:`PARITY_BOUNDS` says what is compared and why). A model that fails
   is not written, unless ``force``, which writes it flagged ``parity_forced=true``.
6. Write atomically (temporary file, fsync, rename) and load the written file once more.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import secrets
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from instrument.contract import CONTRACT_VERSION, INPUT_CATEGORY, INPUT_LATENT, OUTPUT_AUDIO, ModelInfo
from instrument.errors import ModelFileError
from instrument.files import write_atomic
from instrument.main import package_version
from instrument.model import load_model, load_model_bytes, open_session
from train.errors import ModelError

OPSET = 17
DEFAULT_GRIFFIN_LIM_ITERS = 32  # tests/bench/README.md: SC 0.060 at 32 iterations, 0.45 ms per clip-iteration on CPU

# (architecture, precision) -> {metric: bound}; every metric is a relative error ||ort - torch|| / ||torch||
# per generated clip, the worst clip counting. Why these bounds (tests/bench/README.md has the measurements):
# - "waveform" (WaveGAN): float32 ORT and PyTorch differ only in summation order, ~1e-7 measured; 1e-4 is
#   the bound the issue sets.
# - "spectrogram" (SpecGAN's network alone, before phase reconstruction): the same kind of graph, the same bound.
# - "magnitude" (SpecGAN, whole graph): the STFT magnitude of the final audio. Griffin-Lim with momentum 0.99
#   amplifies float32 rounding by ~1.25x per iteration (measured: 1e-6 at 0 iterations, ~1e-4..4e-4 at 32,
#   up to 2e-3 at 64 on a trained model), and the waveform also drifts in phase, which is inaudible. 1e-2
#   (-40 dB) keeps a 5x margin up to 64 iterations; the spectrogram bound is the tight check.
# - fp16 weights: each weight is rounded to 11 significant bits (relative error <= 2^-11 = 4.9e-4), and the
#   errors of 5-6 layers add up; measured 2e-4..3e-3 on WaveGAN's waveform and ~5e-4 on SpecGAN's
#   spectrogram. 1e-2 (-40 dB) leaves a margin. Griffin-Lim amplifies that 5e-4 to 1e-2..4e-2 on the
#   magnitude (32-64 iterations, trained model), which is still below Griffin-Lim's own reconstruction
#   error (spectral convergence 0.06 at 32 iterations); the bound there is 1e-1.
PARITY_BOUNDS: dict[tuple[str, str], dict[str, float]] = {
    ("wavegan", "fp32"): {"waveform": 1e-4},
    ("wavegan", "fp16"): {"waveform": 1e-2},
    ("specgan", "fp32"): {"spectrogram": 1e-4, "magnitude": 1e-2},
    ("specgan", "fp16"): {"spectrogram": 1e-2, "magnitude": 1e-1},
}


class ExportError(ModelError):
    """An export that cannot be done as asked (a failed parity check, non-finite weights)."""


@dataclass
class ExportReport:
    path: Path | None
    info: ModelInfo
    precision: str
    size_bytes: int
    errors: dict[str, dict[str, float]]  # metric -> case -> worst relative error
    bounds: dict[str, float]
    seed: int
    forced: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> dict[str, float]:
        return {m: max(cases.values()) for m, cases in self.errors.items()}

    @property
    def passed(self) -> bool:
        return all(self.worst[m] <= self.bounds[m] for m in self.bounds)

    def summary(self) -> str:
        i = self.info
        lines = [f"{i.architecture}, {i.n_samples} samples at {i.sample_rate} Hz, categories {', '.join(i.categories)}, "
                 f"{i.training_steps} training steps, {self.precision} weights, {self.size_bytes / 1e6:.1f} MB"]
        lines.append(f"parity, onnxruntime (CPU) vs PyTorch, fresh latents (seed {self.seed}):")
        for metric, cases in self.errors.items():
            worst, bound = self.worst[metric], self.bounds[metric]
            detail = ", ".join(f"{c} {e:.1e}" for c, e in cases.items())
            verdict = "ok" if worst <= bound else "FAILED"
            lines.append(f"  {metric:<12} worst {worst:.2e} ({_db(worst):.0f} dB) <= {bound:.0e}: {verdict}  [{detail}]")
        lines.extend(self.notes)
        return "\n".join(lines)


def _db(rel: float) -> float:
    return 20 * np.log10(max(rel, 1e-12))


def relative_errors(found: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``||found - reference|| / ||reference||`` per row (per clip) of ``[B, ...]`` arrays."""
    f = np.asarray(found, np.float64).reshape(len(found), -1)
    r = np.asarray(reference, np.float64).reshape(len(reference), -1)
    floor = 1e-8 * np.sqrt(r.shape[1])  # a silent reference clip: compare against a tiny absolute scale
    return np.linalg.norm(f - r, axis=1) / np.maximum(np.linalg.norm(r, axis=1), floor)


def parity_cases(info: ModelInfo, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (z, category)``: every pure category (2 latents each), 50/50 mixtures of neighbouring
    categories plus random mixtures, and one random mixture at batch 1."""
    c = info.n_categories
    eye = np.eye(c, dtype=np.float32)
    pure = np.repeat(eye, 2, axis=0)
    mixes = [0.5 * (eye[i] + eye[i + 1]) for i in range(c - 1)]
    mixes += list(rng.dirichlet(np.ones(c), size=2).astype(np.float32))
    mixed = np.stack(mixes).astype(np.float32)
    single = rng.dirichlet(np.ones(c), size=1).astype(np.float32)
    return {name: (info.sample_latents(len(cat), rng), cat) for name, cat in
            (("pure", pure), ("mixed", mixed), ("batch1", single))}


def _check_finite(state: dict, what: str) -> None:
    import torch  # torch: only when exporting (the module is imported by the command root's plugin)

    bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ExportError(f"{what} has NaN/Inf weights in {', '.join(bad[:3])}{more}; it cannot be exported. "
                          "Export an earlier checkpoint (ckpt-*.pt in the run folder)")


def _to_onnx(module, n_categories: int, latent_dim: int, output: str) -> bytes:
    import torch  # torch: only when exporting (the module is imported by the command root's plugin)

    buf = io.BytesIO()
    example = (torch.zeros(2, latent_dim), torch.full((2, n_categories), 1.0 / n_categories))
    with warnings.catch_warnings():
        # the TorchScript exporter announces its deprecation and notes harmless constant-folding limits
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            module, example, buf, dynamo=False, opset_version=OPSET, do_constant_folding=True,
            input_names=[INPUT_LATENT, INPUT_CATEGORY], output_names=[output],
            dynamic_axes={INPUT_LATENT: {0: "batch"}, INPUT_CATEGORY: {0: "batch"}, output: {0: "batch"}},
        )
    return buf.getvalue()


def store_half(model_proto, prefix: str) -> int:
    """Store float32 initializers named ``prefix*`` as fp16 followed by a Cast back to float32 (the
    fixed DFT kernels and statistics stay float32). Returns how many were converted."""
    from onnx import TensorProto, helper, numpy_helper  # onnx: only when exporting

    graph = model_proto.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or not init.name.startswith(prefix):
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + ".fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + ".cast"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    return len(casts)


def dedupe_constants(model_proto, min_bytes: int = 1024) -> int:
    """Keep one copy of each large ``Constant`` tensor. The tracer emits the DFT kernels again at every
    unrolled Griffin-Lim iteration (8.9 MB of copies at 32 iterations); this points every use at the
    first copy, moved to the top of the graph. Returns how many copies were dropped."""
    graph = model_proto.graph
    first: dict[bytes, str] = {}
    rename: dict[str, str] = {}
    hoisted, rest = [], []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = node.attribute[0].t
            if tensor.ByteSize() >= min_bytes:
                key = hashlib.sha256(tensor.SerializeToString()).digest()
                if key in first:
                    rename[node.output[0]] = first[key]
                    continue
                first[key] = node.output[0]
                hoisted.append(node)
                continue
        rest.append(node)
    for node in rest:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    for out in graph.output:
        if out.name in rename:  # never the case for our graphs, but a dropped name must not dangle
            raise ExportError(f"graph output {out.name} is a duplicated constant")
    del graph.node[:]
    graph.node.extend(hoisted + rest)
    return len(rename)


def _with_metadata(data: bytes, meta: dict[str, str], half: bool, doc: str, half_prefix: str = "inner.generator.",
                   n_samples: int | None = None) -> bytes:
    import onnx  # onnx: only when exporting

    proto = onnx.load_from_string(data)
    dedupe_constants(proto)
    if n_samples is not None:  # the tracer leaves the width symbolic after reshapes; the contract fixes it
        dims = proto.graph.output[0].type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        dims[1].dim_value = n_samples
    if half and store_half(proto, half_prefix) == 0:
        raise ExportError("--half found no generator weights to store as fp16 (the exported graph's initializers are unnamed)")
    proto.producer_name = "gesturegan"
    proto.producer_version = meta.get("producer_version", "")
    proto.doc_string = doc
    del proto.metadata_props[:]
    for k, v in sorted(meta.items()):
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_model(checkpoint: str | Path, out: str | Path, *, half: bool = False, griffin_lim_iters: int | None = None,
                 force: bool = False, seed: int | None = None, threads: int | None = None, weights: str = "auto",
                 debuzz: int | None = None) -> ExportReport:
    """Export ``checkpoint`` (a ``.pt`` file or a run folder) to ``out``; see the module docstring. The
    steps: load the synthesizer (:func:`_load`), trace it with its metadata, check the bytes the way
    the engine will (:func:`load_model_bytes`), compare onnxruntime with PyTorch (:func:`_parity_errors`),
    then stamp the parity into the metadata and write the file atomically."""
    t0 = time.perf_counter()
    src, synth, spec, state, notes = _load(checkpoint, weights, griffin_lim_iters, debuzz)
    precision = "fp16" if half else "fp32"
    bounds = PARITY_BOUNDS[(spec.architecture, precision)]
    info = _model_info(spec, state, src, precision)
    wrapped = _contract(synth)
    doc = f"GestureGAN {spec.describe()}. Inputs z [batch, {spec.latent_dim}], category [batch, {spec.n_categories}]; output audio [batch, {spec.n_samples}]."
    raw = _to_onnx(_baked(wrapped), spec.n_categories, spec.latent_dim, OUTPUT_AUDIO)  # parity: against the unbaked model
    data = _with_metadata(raw, info.to_metadata(), half, doc, n_samples=spec.n_samples)
    source = f"exported {src.name}"
    model = load_model_bytes(data, source, provider="cpu", threads=threads)  # the engine's checks, on the engine's session
    if model.info != info:
        raise ModelFileError(f"{source}: metadata did not survive the round trip: wrote {info}, read {model.info}")
    seed = secrets.randbits(32) if seed is None else seed
    try:
        errors = _parity_errors(wrapped, synth, model, spec, info, bounds, seed, half, threads, source)
    finally:
        model.close()
    report = ExportReport(None, info, precision, len(data), errors, bounds, seed, notes=notes)
    if not report.passed:
        if not force:
            raise ExportError(f"parity check failed, {out} was not written:\n{report.summary()}\n"
                              "(--force writes it anyway, flagged parity_forced=true in its metadata)")
        report.forced = True
    worst_metric = max(bounds, key=lambda m: report.worst[m] / max(bounds[m], 1e-30))
    final = replace(info, extra={**info.extra, "parity_rel_error": f"{report.worst[worst_metric]:.3e}",
                                 "parity_bound": f"{bounds[worst_metric]:.0e}", "parity_metric": worst_metric,
                                 "parity_forced": "true" if report.forced else "false"})
    data = _with_metadata(raw, final.to_metadata(), half, doc, n_samples=spec.n_samples)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, data)
    with load_model(out, provider="cpu", threads=threads, warmup=False) as written:
        report.info = written.info
    report.path, report.size_bytes, report.seconds = out, len(data), time.perf_counter() - t0
    return report


def _baked(wrapped):
    """A copy of the model to trace, with balanced layers' weights stored as computed (see
    :func:`train.wavegan.bake_balanced`)."""
    from train.wavegan import bake_balanced  # torch: only when exporting

    baked = copy.deepcopy(wrapped)
    bake_balanced(baked)
    return baked


def _load(checkpoint: str | Path, weights: str, griffin_lim_iters: int | None, debuzz: int | None = None):
    """(the checkpoint file, the synthesizer, its spec, the checkpoint state, notes for the report);
    SpecGAN's synthesizer rebuilt with ``griffin_lim_iters`` unrolled where asked; WaveGAN's notch comb
    put on (or taken off) where ``debuzz`` asks (:func:`train.checkpoint.load_synthesizer`)."""
    from train.checkpoint import load_synthesizer, resolve  # torch: only when exporting
    from train.models import Synthesizer

    src = resolve(checkpoint)
    if src.suffix.lower() == ".onnx":
        raise ExportError(f"{src} is already an exported model; export takes a checkpoint (.pt) or a run folder "
                          f"(to look at the model: gesturegan inspect {src})")
    synth, spec, state = load_synthesizer(src, weights=weights, debuzz=debuzz)
    trained = state["spec"].get("debuzz", 0)  # the checkpoint's own spec, before --debuzz
    _check_finite(synth.state_dict(), str(src))
    notes: list[str] = []
    if state["weights"] == "ema":
        notes.append("generator weights: the moving average (--ema)")
    if debuzz is not None and trained != spec.debuzz:
        notes.append("notch comb: " + (f"{spec.debuzz} periods" if spec.debuzz else "off")
                     + f" (trained with {f'{trained} periods' if trained else 'none'}; --debuzz)")
    if spec.architecture == "specgan":
        iters = DEFAULT_GRIFFIN_LIM_ITERS if griffin_lim_iters is None else griffin_lim_iters
        if not 0 <= iters <= 1000:
            raise ExportError(f"--griffin-lim-iters must be between 0 and 1000, got {iters}")
        if iters != spec.griffin_lim_iters:
            spec = replace(spec, griffin_lim_iters=iters)
            old = synth.to_audio
            synth = Synthesizer(spec, synth.generator, (old.mean.flatten().numpy(), old.std.flatten().numpy())).eval()
        notes.append(f"Griffin-Lim: {iters} iterations unrolled in the graph")
    elif griffin_lim_iters is not None:
        raise ExportError("--griffin-lim-iters applies to SpecGAN models; this checkpoint is WaveGAN")
    return src, synth, spec, state, notes


def _model_info(spec, state: dict, src: Path, precision: str) -> ModelInfo:
    """The model contract's metadata for the file (the parity figures are added once measured)."""
    dataset = dict(state.get("dataset") or {})
    dataset.pop("settings", None)  # the ingest settings are in the checkpoint; the summary says what the data was
    return ModelInfo(
        architecture=spec.architecture, sample_rate=spec.sample_rate, n_samples=spec.n_samples, latent_dim=spec.latent_dim,
        latent_distribution="uniform", categories=spec.categories, training_steps=int(state.get("step", 0)), dataset=dataset,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), contract_version=CONTRACT_VERSION,
        extra={"precision": precision, "model_spec": json.dumps(spec.to_json(), sort_keys=True),
               "producer_version": package_version(), "checkpoint": f"{src.parent.name}/{src.name}"},
    )


def _contract(synth):
    """``synth`` with the contract's output range, whatever the generator's last layer: clamp to [-1, 1]."""
    import torch  # only when exporting

    class Contract(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, z: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
            return torch.clamp(self.inner(z, category), -1.0, 1.0)

    return Contract(synth).eval()


def _parity_errors(wrapped, synth, model, spec, info: ModelInfo, bounds: dict, seed: int, half: bool, threads: int | None,
                   source: str) -> dict[str, dict[str, float]]:
    """The largest relative error of onnxruntime against PyTorch per metric in ``bounds`` and per
    parity case (:func:`parity_cases`, drawn from ``seed``)."""
    import torch  # torch: only when exporting (the module is imported by the command root's plugin)

    from train.stft import DFTConv

    cases = parity_cases(info, np.random.default_rng(seed))
    errors: dict[str, dict[str, float]] = {m: {} for m in bounds}
    generator_session = None
    if "spectrogram" in bounds:  # SpecGAN's network alone, before the phase reconstruction amplifies rounding
        gen_bytes = _with_metadata(_to_onnx(synth.generator, spec.n_categories, spec.latent_dim, "image"), {}, half, "", half_prefix="")
        generator_session = _cpu_session(gen_bytes, threads)
    dft = DFTConv()
    with torch.no_grad():
        for name, (z, cat) in cases.items():
            zt, ct = torch.from_numpy(z), torch.from_numpy(cat)
            ref = wrapped(zt, ct)
            got = model.generate(z, cat)
            if not np.all(np.isfinite(got)):
                raise ExportError(f"{source}: onnxruntime produced NaN/Inf for the {name} case; the model is not written")
            if "waveform" in bounds:
                errors["waveform"][name] = float(relative_errors(got, ref.numpy()).max())
            if "magnitude" in bounds:
                errors["magnitude"][name] = float(relative_errors(_magnitude(dft, torch.from_numpy(got)), _magnitude(dft, ref)).max())
            if generator_session is not None:
                image = generator_session.run(None, {INPUT_LATENT: z, INPUT_CATEGORY: cat})[0]
                errors["spectrogram"][name] = float(relative_errors(image, synth.generator(zt, ct).numpy()).max())
    return errors


def _magnitude(dft, audio):
    re, im = dft.stft(audio)
    return (re**2 + im**2).sqrt().numpy()


def _cpu_session(data: bytes, threads: int | None):
    return open_session(data, "cpu", threads, "the SpecGAN generator alone")[0]
