"""Rendering compositions offline: TOML scores, Python score scripts, Standard MIDI Files, and the
scores recorded from a live performance. Everything goes through the engine's offline path
(:meth:`Engine.render`: the same mixer as live, on a manual clock), so a score sounds as it would live.

- :func:`render_score`: post a :class:`~instrument.score.Score`'s events at their samples (ramps and
  morph paths as control moves 20 times a second, which the engine smooths), render, write the WAV (temporary
  file, renamed at the end) and, if asked, a spectrogram PNG beside it.
- :func:`run_script`: a Python file that builds a score; its errors come back as the script's own
  traceback, marked as such.
- :func:`render_midi_file`: a Standard MIDI File through a MIDI map (mido turns ticks into seconds,
  tempo changes included; the map's MidiController turns messages into engine events at their sample).
- :func:`score_from_log`: a live engine's event log as a score (``time = "samples"``) that re-renders
  the performance.
"""

from __future__ import annotations

import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import mido
import numpy as np
import soundfile as sf
import soxr

from .commands import ROOT_NOTE, Command, score_event
from .control import Controls
from .engine import Engine, EngineConfig
from .midi import MidiController
from .midimap import load_map, shipped_map
from .params import ParamError
from .picture import write_spectrogram_png
from .presets import PresetError, PresetLibrary, default_preset_dirs, recall
from .score import Event, Score, ScoreError, check_value, resolve_model

PNG_ROW_S = 30.0  # seconds of sound per row of the spectrogram picture


def _post(eng: Controls, score: Score, e: Event, where: str, presets: PresetLibrary) -> None:
    at = score.sample(e.at)
    f, v = e.fields, e.value
    if e.kind == "trigger":
        eng.trigger(None if v == "mix" else v, f.get("velocity", 1.0), f.get("pitch", 0.0), at=at)
    elif e.kind == "note":
        root = int(f.get("root", ROOT_NOTE))
        eng.note_on(v, f.get("velocity", 0.8), f.get("category"), root=root, at=at, channel=f.get("channel"), timbre=f.get("timbre", 0.0))
        if "length" in f:
            eng.note_off(v, at=score.sample(e.at + f["length"]), channel=f.get("channel"))
    elif e.kind == "note_off":
        eng.note_off(v, at=at, channel=f.get("channel"))
    elif e.kind == "expression":
        eng.expression(v, f.get("bend"), f.get("pressure"), at=at)
    elif e.kind == "all_notes_off":
        eng.all_notes_off(at=at)
    elif e.kind == "set":
        for pid, x in v.items():
            check_value(eng.table, pid, x, where)
            eng.set(pid, x, at=at)
    elif e.kind == "layer":
        eng.set("layer", v, at=at)
    elif e.kind == "ramp":  # the mixer steps it, from the value the parameter has then unless it says "from"
        eng.post(eng.vocabulary.ramp(str(v), f["to"], score.sample(e.at + f["over"]) - at, f.get("from")), at)
    elif e.kind == "morph":
        pts = v if isinstance(v[0], list) else [v]
        if len(pts) == 1 or "over" not in f:
            eng.morph(*pts[-1], at=at)
        else:
            eng.post(eng.vocabulary.morph_path(pts, score.sample(e.at + f["over"]) - at), at)
    elif e.kind == "preset":
        recall(eng, presets.find(v), at)
    elif e.kind == "mix":
        eng.set_mix(v, at=at)
    elif e.kind == "latent":
        eng.set_latent(None if v == "seed" else v, at=at)


def post_score(eng: Controls, score: Score) -> None:
    """Every event of ``score`` posted to ``eng`` at its sample; model-dependent checks (categories,
    weights) raise :class:`ScoreError` naming the event."""
    presets = PresetLibrary(([score.source.parent] if score.source else []) + default_preset_dirs())
    for i, e in enumerate(score.sorted_events()):
        where = f"{score.source or 'score'}: event {i + 1}" + (f" (line {e.line})" if e.line else "")
        try:
            _post(eng, score, e, where, presets)
        except (ParamError, PresetError, ValueError) as err:
            raise ScoreError(str(err) if str(err).startswith(str(score.source or "score")) else f"{where}: {err}") from None


def render_score(score: Score, out: str | Path | None = None, progress: bool = False, png: bool = False,
                 model: str | Path | None = None) -> np.ndarray | dict:
    """Render ``score``: to ``out`` (WAV, 24-bit; returns a summary dict) or, without ``out``, return the
    audio ``[frames, 2]``. ``png``: also write ``out`` with ``.png``, a spectrogram of the whole piece."""
    path = resolve_model(score, model)
    seconds = score.length_seconds() + score.tail
    if seconds <= 0:
        raise ScoreError(f"{score.source or 'score'}: nothing to render (no duration and no events)")
    config = EngineConfig(sample_rate=int(score.sample_rate), block_frames=int(score.block), seed=int(score.seed))
    with Engine(path, config, sync=True) as eng:
        post_score(eng, score)
        if out is None:
            return eng.render(seconds, None, progress)
        out = Path(out)
        eng.render(seconds, out, progress)
        st = eng.status()
    summary = {"wav": str(out), "seconds": seconds, "model": str(path), "clips_generated": st["clips_generated"],
               "nonfinite_samples": st["nonfinite_samples"], "limited_blocks": st["limited_blocks"]}
    if png:
        summary["png"] = str(write_piece_png(out, score.title or out.stem))
    return summary


def write_piece_png(wav: Path, title: str) -> Path:
    """A spectrogram of a whole rendered piece beside it: one row per 30 s, resampled to 16 kHz."""
    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), sr, 16000)
    row = int(PNG_ROW_S * 16000)
    rows = [mono[i:i + row] for i in range(0, len(mono), row)] or [mono]
    labels = [f"{title[:40]} {int(i * PNG_ROW_S) // 60}:{int(i * PNG_ROW_S) % 60:02d}" for i in range(len(rows))]
    png = wav.with_suffix(".png")
    write_spectrogram_png(png, rows, 16000, labels=labels, columns=1, n_fft=1024, hop=512)  # written atomically
    return png


class ScriptError(RuntimeError):
    """A score script that raised: its own traceback, marked as the script's."""


def run_script(path: str | Path) -> Score:
    """Run a Python score script and return the :class:`Score` it leaves in the variable ``score``."""
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{path}: no such score script")
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        env = runpy.run_path(str(path), run_name="__gesturegan_score__")
    except SystemExit:
        raise ScriptError(f"{path}: the score script called exit() before making a score") from None
    except ScoreError as e:  # a wrong event: the script's line is the useful part
        tb = [fr for fr in traceback.extract_tb(e.__traceback__) if fr.filename == str(path)]
        at = f" (line {tb[-1].lineno})" if tb else ""
        raise ScoreError(f"{path}{at}: {e}") from None
    except Exception:  # noqa: BLE001 - whatever the script raised, shown as its own
        lines = traceback.format_exc().splitlines()
        start = next((i for i, ln in enumerate(lines) if str(path) in ln), 1)
        raise ScriptError(f"the score script {path} raised an error (its traceback follows):\n"
                          + "Traceback (most recent call last):\n" + "\n".join(lines[start:])) from None
    finally:
        sys.path.remove(str(path.parent.resolve()))
    score = env.get("score")
    if not isinstance(score, Score):
        raise ScoreError(f"{path}: a score script must leave a Score in the variable `score` "
                         "(score = Score(...); score.at(0).trigger(...))")
    if score.source is None:
        score.source = path
    return score


def render_midi_file(mid: str | Path, out: str | Path | None, midi_map: str | Path | None = None, model: str | Path = "default",
                     sample_rate: int = 48000, tail: float = 3.0, seed: int = 0, block: int = 1024, progress: bool = False,
                     png: bool = False) -> np.ndarray | dict:
    """Render a Standard MIDI File through a MIDI map (default: the shipped one), tempo changes included."""
    mid = Path(mid)
    try:
        song = mido.MidiFile(str(mid))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as e:
        raise ScoreError(f"{mid}: not a readable Standard MIDI File: {e}") from None
    score = Score(model=str(model), sample_rate=sample_rate, tail=tail, seed=seed, block=block, source=mid)
    path = resolve_model(score, model)
    map_path = Path(midi_map) if midi_map else shipped_map()
    t = 0.0
    with Engine(path, EngineConfig(sample_rate=sample_rate, block_frames=block, seed=seed), sync=True) as eng:
        ctl = MidiController(eng, load_map(map_path, eng.table, eng.info.categories), PresetLibrary())
        for msg in song:  # mido: .time is the delta in seconds, with the file's tempo map applied
            t += msg.time
            if not msg.is_meta and msg.type not in ("sysex", "clock", "start", "stop", "continue", "songpos", "active_sensing"):
                ctl.handle(msg.bytes(), at=int(round(t * sample_rate)))
        ctl.handle([0xB0, 123, 0], at=int(round(t * sample_rate)))  # all notes off at the end
        seconds = t + tail
        if out is None:
            return eng.render(seconds, None, progress)
        eng.render(seconds, Path(out), progress)
        st = eng.status()
    summary = {"wav": str(out), "seconds": seconds, "midi_messages": ctl.stats.messages, "notes": ctl.stats.notes,
               "clips_generated": st["clips_generated"]}
    if png:
        summary["png"] = str(write_piece_png(Path(out), mid.stem))
    return summary


def score_from_log(log: list[tuple[int, Command]], eng: Any, model: str, seconds: float) -> Score:
    """A live engine's commands (``(sample, command)`` as :meth:`Engine.listen`'s event listener sees
    them; model swaps are left out, a score names its model once) as a re-renderable score."""
    score = Score(title="recorded performance", model=model, sample_rate=eng.sample_rate, time="samples",
                  duration=round(seconds * eng.sample_rate), tail=0.0, seed=eng.config.seed, block=eng.config.block_frames)
    for t, command in log:
        event = score_event(command, eng.info.categories)
        if event is not None:
            score.events.append(Event(t, *event))
    return score
