"""The README's instrument section: its parameter table is the code's, and its offline Python snippet
runs as written (the live one runs in test_jack.py, where there is a device)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from instrument.params import build_table

from .onnx_models import GESTURES, engine_model_file

REPO = Path(__file__).resolve().parents[2]


def section() -> str:
    text = (REPO / "README.md").read_text()
    return text[text.index("## For performers: playing a model") : text.index("## Benchmarks")]


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", section(), flags=re.S)


def generated(marker: str, table: str) -> None:
    """The README block between ``<!-- marker -->`` and ``<!-- /marker -->`` is ``table``; with
    GESTUREGAN_UPDATE_DOCS=1 it is rewritten instead (then review the diff)."""
    text = (REPO / "README.md").read_text()
    a, b = text.index(f"<!-- {marker} -->") + len(f"<!-- {marker} -->"), text.index(f"<!-- /{marker} -->")
    if os.environ.get("GESTUREGAN_UPDATE_DOCS") == "1":
        (REPO / "README.md").write_text(text[:a] + "\n" + table + "\n" + text[b:])
        return
    assert text[a:b].strip() == table


def test_parameter_table_in_the_readme_is_generated_from_the_code():
    generated("params", build_table(GESTURES).markdown())


def test_osc_address_space_in_the_readme_is_generated_from_the_code(tmp_path):
    from instrument.engine import Engine
    from instrument.osc import OscRouter

    with Engine(engine_model_file(tmp_path / "m.onnx", categories=GESTURES)) as eng:
        generated("osc", OscRouter(eng).markdown())


def test_telemetry_table_in_the_readme_is_generated_from_the_code():
    from instrument import telemetry

    generated("telemetry", telemetry.markdown())


def test_offline_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine_model_file(tmp_path / "wavegan.onnx", n_samples=16384, categories=GESTURES)
    offline = [s for s in snippets() if "eng.render(" in s]
    assert len(offline) == 1
    exec(compile(offline[0], "README.md", "exec"), {})
    audio, sr = sf.read(tmp_path / "sketch.wav")
    assert sr == 48000 and audio.shape == (8 * 48000, 2) and np.abs(audio).max() > 0.01


def test_score_script_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = engine_model_file(tmp_path / "m.onnx", n_samples=16384, categories=GESTURES)
    (code,) = [s for s in snippets() if "from instrument.score import Score" in s]
    assert 'model="default"' in code
    exec(compile(code.replace('model="default"', f'model={str(model)!r}'), "README.md", "exec"), {})
    audio, sr = sf.read(tmp_path / "sketch.wav")
    assert sr == 48000 and len(audio) == int((32 * 0.5 + 2.0) * 48000) and np.abs(audio).max() > 0.01
    assert (tmp_path / "sketch.png").stat().st_size > 1000
