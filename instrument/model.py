"""Loading a model for real-time use: one onnxruntime session, checked against the contract, with
options that suit an audio engine.

- **Spinning off** (``session.intra_op.allow_spinning = 0``): ORT's worker threads otherwise busy-wait
  between runs; with two sessions (or a session and the audio thread) on 2 cores that made everything
  2-3x slower (DESIGN.md).
- **A bounded thread count**: :func:`default_threads` (measured in ``tests/bench/bench_export.py``),
  one inter-op thread, sequential execution.
- **All graph optimisations**, which also folds the fp16 weights' casts back to float32 once at load.
- **A warm-up run** at load, which also checks the output's real shape against the metadata.
- **Providers**: ``auto`` takes CUDA when this onnxruntime has the CUDA provider *and* a session really
  gets it (a driver and the CUDA libraries present), else the CPU; ``cuda`` insists (and says why it
  cannot), ``cpu`` never tries CUDA. :attr:`GeneratorModel.provider` says what the session got.

Nothing here may run on the audio thread: loading reads files and creates sessions.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

import numpy as np

from .contract import (
    INPUT_CATEGORY,
    INPUT_LATENT,
    OUTPUT_AUDIO,
    ModelInfo,
    TensorSpec,
    check_category_weights,
    read_header,
    validate_session,
)
from .errors import ModelFileError, ProviderError

PROVIDERS = ("auto", "cpu", "cuda")
_ORT = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
_WARNING = 2  # onnxruntime's default log severity


def default_threads() -> int:
    """Intra-op threads for one session: half the cores, at least 1, at most 4, leaving the rest to the
    audio thread, the control threads and a second session during a hot-swap."""
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def session_options(threads: int | None = None, allow_spinning: bool = False):
    """The engine's session options; ``allow_spinning=True`` exists only so the benchmark can show why not."""
    import onnxruntime as ort  # heavy (~0.3 s): not for the help, the dataset tools or a model's metadata

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spin = "1" if allow_spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.log_severity_level = 3  # errors only: a session's warnings are not a performer's business
    return so


def _nvidia_driver_present() -> bool:
    names = {"linux": ["libcuda.so.1"], "win32": ["nvcuda.dll"]}.get(sys.platform, [])
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


def cuda_status() -> tuple[bool, str]:
    """``(worth trying, why not)``: whether this onnxruntime build has the CUDA provider and an NVIDIA
    driver is installed. Trying is still needed: the CUDA and cuDNN libraries may be missing."""
    import onnxruntime as ort  # heavy (~0.3 s): not for the help, the dataset tools or a model's metadata

    if _ORT["cuda"] not in ort.get_available_providers():
        return False, f"this onnxruntime ({ort.__version__}) has no CUDA provider; install onnxruntime-gpu"
    if not _nvidia_driver_present():
        return False, "no NVIDIA driver found"
    return True, ""


def open_session(model: bytes, provider: str = "auto", threads: int | None = None, source: str = "model"):
    """``(session, provider_used, note)``; ``note`` says why CUDA was not used when it was not."""
    import onnxruntime as ort  # heavy (~0.3 s): not for the help, the dataset tools or a model's metadata

    if provider not in PROVIDERS:
        raise ProviderError(f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    so = session_options(threads)
    note = ""
    if provider in ("auto", "cuda"):
        worth, why = cuda_status()
        if worth:
            try:  # CUDA/cuDNN from the nvidia-* pip packages (PyTorch's) when the system has none
                ort.preload_dlls()
            except Exception:  # noqa: BLE001 - optional; a missing library shows up as CPU below
                pass
            ort.set_default_logger_severity(4)  # a failed CUDA start logs errors we report ourselves
            try:
                session = _create(ort, model, so, [_ORT["cuda"], _ORT["cpu"]], source)
            finally:
                ort.set_default_logger_severity(_WARNING)
            if session.get_providers()[0] == _ORT["cuda"]:
                return session, "cuda", ""
            why = "onnxruntime could not start its CUDA provider (CUDA or cuDNN libraries missing or of the wrong version)"
        if provider == "cuda":
            raise ProviderError(f"--provider cuda: {why}; use --provider cpu or auto")
        if worth:  # a GPU is there and CUDA did not start: worth saying; a machine without one is the normal case
            note = f"CPU, because {why}"
    return _create(ort, model, so, [_ORT["cpu"]], source), "cpu", note


def _create(ort, model: bytes, so, providers: list[str], source: str):
    try:
        return ort.InferenceSession(model, so, providers=providers)
    except Exception as e:  # onnxruntime raises its own pybind types (Fail, InvalidGraph, NotImplemented, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"{source}: onnxruntime {ort.__version__} cannot load it: {first}") from None


class GeneratorModel:
    """A loaded model: ``generate(z, category) -> audio``. A context manager; ``close()`` is idempotent.

    ``z : [B, latent_dim]``, ``category : [B, n_categories]`` (float32, or anything numpy converts) ->
    ``audio : [B, n_samples]`` float32. Thread-safe (onnxruntime sessions are), but meant to be owned
    by one generation worker.
    """

    def __init__(self, session, info: ModelInfo, source: str, provider: str, note: str = "", threads: int = 1) -> None:
        self._session = session
        self.info = info
        self.source = source
        self.provider = provider
        self.provider_note = note
        self.threads = threads
        self.warmup_seconds: float | None = None

    @property
    def closed(self) -> bool:
        return self._session is None

    def generate(self, z: np.ndarray, category: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise RuntimeError(f"{self.source}: the model is closed")
        z = np.ascontiguousarray(z, dtype=np.float32)
        category = np.ascontiguousarray(category, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.info.latent_dim:
            raise ValueError(f"z must have shape [batch, {self.info.latent_dim}], got {list(z.shape)}")
        if category.shape[:1] != z.shape[:1]:
            raise ValueError(f"category must have shape [{z.shape[0]}, {self.info.n_categories}] to match z, got {list(category.shape)}")
        check_category_weights(category, self.info.n_categories)  # the contract: non-negative rows summing to 1
        return self._session.run([OUTPUT_AUDIO], {INPUT_LATENT: z, INPUT_CATEGORY: category})[0]

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """The graph's ``(inputs, outputs)`` as onnxruntime sees them."""
        if self._session is None:
            raise RuntimeError(f"{self.source}: the model is closed")
        return ([TensorSpec.from_node_arg(a) for a in self._session.get_inputs()],
                [TensorSpec.from_node_arg(a) for a in self._session.get_outputs()])

    def warm_up(self) -> float:
        """One batch-1 generation (first runs pay for memory planning); checks the real output shape."""
        z = self.info.sample_latents(1, np.random.default_rng(0))
        cat = np.zeros((1, self.info.n_categories), np.float32)
        cat[0, 0] = 1.0
        t0 = time.perf_counter()
        try:
            audio = self.generate(z, cat)
        except Exception as e:  # noqa: BLE001 - a graph that loads but cannot run is a broken file
            raise ModelFileError(f"{self.source}: the model fails when run: {str(e).strip().splitlines()[0]}") from None
        self.warmup_seconds = time.perf_counter() - t0
        if audio.shape != (1, self.info.n_samples) or audio.dtype != np.float32:
            raise ModelFileError(f"{self.source}: the model produced {audio.dtype} {list(audio.shape)}; its metadata promises "
                                 f"float32 [1, {self.info.n_samples}]")
        return self.warmup_seconds

    def close(self) -> None:
        self._session = None  # onnxruntime frees the session when the last reference goes

    def __enter__(self) -> "GeneratorModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return (f"GeneratorModel({self.source!r}, {i.architecture}, {i.n_samples} samples at {i.sample_rate} Hz, "
                f"categories={list(i.categories)}, provider={self.provider})")


def load_model_bytes(data: bytes, source: str = "model", provider: str = "auto", threads: int | None = None,
                     warmup: bool = True) -> GeneratorModel:
    """Check ``data`` (a whole ONNX file) against the contract and open it; see :func:`load_model`."""
    read_header(data, source)  # tells truncated from not-ONNX before onnxruntime's protobuf message does
    session, used, note = open_session(data, provider, threads, source)
    info = validate_session(session, source)
    model = GeneratorModel(session, info, source, used, note, threads or default_threads())
    if warmup:
        try:
            model.warm_up()
        except BaseException:
            model.close()
            raise
    return model


def read_model_file(path: str | os.PathLike) -> bytes:
    """A model file's bytes, or :class:`ModelFileError` when there is no file there."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such model file" + (" (it is a folder)" if p.is_dir() else ""))
    return p.read_bytes()


def load_model(path: str | os.PathLike, provider: str = "auto", threads: int | None = None, warmup: bool = True) -> GeneratorModel:
    """Open a model file for the engine. Raises :class:`ModelFileError` (missing, truncated, not ONNX,
    breaking the contract, newer contract version) or :class:`ProviderError` (``provider='cuda'`` where
    CUDA cannot be used), each naming the file and what is wrong."""
    return load_model_bytes(read_model_file(path), str(path), provider, threads, warmup)
