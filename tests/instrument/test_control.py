"""The control interface (instrument.control): the engine and the tests' recording engine implement it,
and the control surfaces use nothing of the engine but it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from instrument import cli, midi, osc, presets
from instrument.control import Controls
from instrument.engine import Engine, EngineConfig

from .onnx_models import engine_model
from .recording import RecordingEngine

INSTRUMENT = Path(osc.__file__).parent


def members() -> set[str]:
    """What :class:`Controls` offers: its annotated attributes, properties and methods."""
    names = set(Controls.__annotations__)
    names |= {n for n, v in vars(Controls).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))}
    return names


def engine_uses(source: str) -> dict[str, list[int]]:
    """Every attribute read off the engine in ``source`` (``engine.x``, ``eng.x``, ``self.engine.x``),
    with the lines it is read on."""
    found: dict[str, list[int]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        is_engine = (isinstance(base, ast.Name) and base.id in ("engine", "eng")) or (
            isinstance(base, ast.Attribute) and base.attr == "engine" and isinstance(base.value, ast.Name) and base.value.id == "self")
        if is_engine:
            found.setdefault(node.attr, []).append(node.lineno)
    return found


def test_the_interface_is_what_the_docs_say():
    offered = members()
    for name in ("info", "table", "vocabulary", "values", "model_source", "status", "now", "sample_at", "post", "set",
                 "set_values", "set_mix", "morph", "ramp", "morph_path", "set_latent", "trigger", "note_on", "note_off", "all_notes_off",
                 "load_model", "start_recording", "stop_recording", "listen"):
        assert name in offered, name
    assert not offered & {"worker", "clips", "process_block", "start", "stop", "close", "render", "ring"}  # the engine's own


def test_the_engine_and_the_recording_engine_are_controls(tmp_path):
    for kind in (Engine, RecordingEngine):
        with kind(engine_model(), EngineConfig(16000, 256), sync=True) as e:
            assert isinstance(e, Controls)
            assert e.model_source  # a path or a description, never empty
            for name in members():
                assert hasattr(e, name), (kind.__name__, name)


@pytest.mark.parametrize("module, functions", [
    (osc, None), (midi, None), (presets, ["recall"]), (cli, ["_run", "_start_controls"]),
], ids=["osc", "midi", "presets.recall", "keyboard"])
def test_control_surfaces_use_only_the_interface(module, functions):
    if functions is None:
        source = inspect.getsource(module)
    else:
        source = "\n".join(inspect.getsource(getattr(module, f)) for f in functions)
    uses = engine_uses(source)
    assert uses, "the surface was found to use nothing: the check would pass whatever it did"
    outside = {name: lines for name, lines in uses.items() if name not in members()}
    assert not outside, f"{module.__name__} reaches past instrument.control.Controls: {outside}"


def test_the_check_sees_a_surface_that_reaches_into_the_engine():
    sneaky = "def f(engine):\n    engine.trigger('x')\n    engine.worker.model.source\n"
    uses = engine_uses(sneaky)
    assert set(uses) == {"trigger", "worker"} and "worker" not in members()
