"""Scores: parsing (valid and each kind of invalid), the builder, scripts, deterministic renders, MIDI
files with a tempo change, and record-then-render parity through the in-memory live path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from instrument.audio import MemorySink
from instrument.dsp import db_to_gain
from instrument.engine import Engine, EngineConfig
from instrument.render import ScriptError, render_midi_file, render_score, run_script, score_from_log
from instrument.score import Score, ScoreError, load_score

from .onnx_models import GESTURES, engine_model, engine_model_file

REPO = Path(__file__).resolve().parents[2]
SR = 48000


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return engine_model_file(tmp_path_factory.mktemp("m") / "m.onnx", n_samples=8192, categories=GESTURES)


HEAD = '[score]\nmodel = "m.onnx"\ntime = "seconds"\nduration = 2\ntail = 0.5\nseed = 3\n'


def write(tmp_path, text: str, model=None) -> Path:
    if model is not None:
        (tmp_path / "m.onnx").write_bytes(Path(model).read_bytes())
    p = tmp_path / "piece.toml"
    p.write_text(text)
    return p


def test_a_valid_score_parses_with_times_in_its_unit(tmp_path):
    p = write(tmp_path, HEAD.replace('"seconds"', '"beats"') + "tempo = 120\n" + """
[[event]]
at = 0
trigger = "trigger"
velocity = 0.5

[[event]]
at = 2
ramp = "macro1"
to = 1.0
over = 1

[[event]]
at = 3
morph = [[0.0, 0.0], [1.0, 1.0]]
over = 1
""")
    s = load_score(p)
    assert [e.kind for e in s.events] == ["trigger", "ramp", "morph"] and [e.line for e in s.events] == [9, 14, 20]
    assert s.sample(2) == SR and s.seconds(4) == 2.0 and s.length_seconds() == 1.0  # duration 2 beats at 120 bpm


@pytest.mark.parametrize("body,why", [
    ("[[event]]\nat = 1\ntrigr = \"trigger\"\n", r"event 1 \(line 8\): unknown event kind 'trigr'"),
    ("[[event]]\nat = 1\ntrigger = \"trigger\"\nvelocty = 1\n", r"event 1 \(line 8\): trigger has no field 'velocty'"),
    ("[[event]]\nat = 1\nset = { macro1 = 3.0 }\n", r"event 1 \(line 8\): set: macro1 must be between -1 and 1, got 3"),
    ("[[event]]\nat = 1\nset = { volume = 3.0 }\n", r"unknown parameter 'volume'"),
    ("[[event]]\nat = 1\ntrigger = \"trigger\"\nvelocity = 2\n", r"velocity must be between 0 and 1"),
    ("[[event]]\nat = 2\ntrigger = \"trigger\"\n\n[[event]]\nat = 1\nlayer = true\n",
     r"event 2 \(line 12\): at = 1 goes back in time \(the event before is at 2\)"),
    ("[[event]]\nat = 1\nmorph = [[0, 0], [2, 0]]\nover = 1\n", r"morph x must be between 0 and 1"),
    ("[[event]]\nat = 1\nmorph = [[0, 0], [1, 0]]\n", r"a morph path needs over"),
    ("[[event]]\nat = 1\nramp = \"gain\"\nto = -6\n", r"ramp needs to = <value> and over = <time>"),
    ("[[event]]\nat = 1\nlayer = true\ntrigger = \"x\"\n", r"has two kinds"),
    ("[[event]]\ntrigger = \"x\"\n", r"needs at = <time>"),
    ("[[event]]\nat = 1\nnote = 200\n", r"note must be a MIDI note 0..127"),
    ("[section]\n", r"unknown table \[section\]"),
])
def test_each_kind_of_bad_score_names_file_event_and_field(tmp_path, body, why):
    p = write(tmp_path, HEAD + "\n" + body)
    with pytest.raises(ScoreError, match=str(p).replace(".", r"\.") + ".*" + why):
        load_score(p)


def test_bad_headers_and_files(tmp_path, model):
    for text, why in (("[score]\nmodel = \"x\"\n", r"must say what times count"), ("title = 1\n", r"needs a \[score\] table"),
                      ("[score\n", r"not valid TOML"), (HEAD + "colour = 1\n", r"\[score\] has no field 'colour'"),
                      (HEAD.replace('"seconds"', '"bars"'), r"time must be one of seconds, beats, samples"),
                      (HEAD.replace("seed = 3", 'seed = "x"'), r"\[score\] seed must be a whole number")):
        with pytest.raises(ScoreError, match=why):
            load_score(write(tmp_path, text))
    with pytest.raises(ScoreError, match="no such score"):
        load_score(tmp_path / "missing.toml")
    s = load_score(write(tmp_path, HEAD.replace("m.onnx", "nowhere.onnx") + "\n[[event]]\nat = 0\nlayer = true\n"))
    with pytest.raises(ScoreError, match=r"\[score\] model: no such model file .*nowhere\.onnx"):
        render_score(s, tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()
    s = load_score(write(tmp_path, HEAD + "\n[[event]]\nat = 0\ntrigger = \"bells\"\n", model))
    with pytest.raises(ScoreError, match=r"event 1 \(line 8\): unknown category 'bells'"):
        render_score(s, tmp_path / "x.wav")
    assert not list(tmp_path.glob("*.wav")) and not list(tmp_path.glob(".*partial"))  # nothing half-written


def test_same_seed_same_bytes_other_seed_other_sound(tmp_path, model):
    body = HEAD + "\n[[event]]\nat = 0\nset = { variation = 0.5, layer = true }\n" + "".join(
        f"\n[[event]]\nat = {0.2 * k}\ntrigger = \"mix\"\nvelocity = 0.7\n" for k in range(8))
    s = load_score(write(tmp_path, body, model))
    render_score(s, tmp_path / "a.wav")
    render_score(s, tmp_path / "b.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    s.seed = 4
    render_score(s, tmp_path / "c.wav")
    a, _ = sf.read(tmp_path / "a.wav")
    c, _ = sf.read(tmp_path / "c.wav")
    assert len(a) == len(c) == int(2.5 * SR) and not np.array_equal(a, c) and np.abs(a).max() > 0.01


def test_builder_matches_the_toml_it_writes(tmp_path, model):
    s = Score(model=str(model), time="beats", tempo=90, duration=8, tail=0.5, seed=2, block=256)
    s.at(0).set({"weight.trigger": 1.0}, variation=0.2).layer(True)
    s.at(1).trigger("trigger_continuous", velocity=0.6, pitch=3).note(64, 0.7, length=1)
    s.at(2).ramp("macro2", to=0.8, over=2).morph([(0, 0), (1, 1), (0, 1)], over=3)
    s.at(4).preset("init").mix({"trigger": 0.5, "continuous_variation": 0.5})
    s.at(5).latent([0.1] * 8).all_notes_off()
    s.at(6).latent("seed").layer(False)
    s.save(tmp_path / "built.toml")
    again = load_score(tmp_path / "built.toml")
    assert [(e.at, e.kind, e.value, e.fields) for e in again.events] == [(e.at, e.kind, e.value, e.fields) for e in s.events]
    with pytest.raises(ScoreError, match="velocity must be between 0 and 1"):
        s.at(1).trigger("trigger", velocity=3)
    assert np.array_equal(render_score(s), render_score(again))


def test_scripts_run_and_their_errors_are_marked_as_theirs(tmp_path, model):
    ok = tmp_path / "ok.py"
    ok.write_text(f"from instrument.score import Score\nscore = Score(model={str(model)!r}, duration=1)\n"
                  "for i in range(4):\n    score.at(i / 4).trigger(score.rng.choice(['trigger', 'mix']))\n")
    s = run_script(ok)
    assert len(s.events) == 4 and s.source == ok
    bad = tmp_path / "bad.py"
    bad.write_text("from instrument.score import Score\nscore = Score()\n\ndef f():\n    return 1 / 0\n\nf()\n")
    with pytest.raises(ScriptError) as e:
        run_script(bad)
    msg = str(e.value)
    assert "the score script" in msg and "its traceback follows" in msg and f'File "{bad}", line 7' in msg and "ZeroDivisionError" in msg
    wrong = tmp_path / "wrong.py"
    wrong.write_text("from instrument.score import Score\nscore = Score()\nscore.at(1).set(macro1=9)\n")
    with pytest.raises(ScoreError, match=r"wrong\.py \(line 3\): .*macro1 must be between -1 and 1"):
        run_script(wrong)
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(ScoreError, match="must leave a Score in the variable `score`"):
        run_script(tmp_path / "none.py")


def test_midi_file_with_a_tempo_change_lands_on_the_tempo_map(tmp_path, model):
    import mido

    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 120 bpm
    beats = [0, 1, 2, 3, 4]
    last = 0
    for b in beats:
        if b == 2:
            tr.append(mido.MetaMessage("set_tempo", tempo=1000000, time=b * 480 - last))  # 60 bpm from beat 2
            last = b * 480
        tr.append(mido.Message("note_on", note=60, velocity=100, time=b * 480 - last))
        tr.append(mido.Message("note_off", note=60, velocity=0, time=48))
        last = b * 480 + 48
    mf.save(tmp_path / "song.mid")
    audio = render_midi_file(tmp_path / "song.mid", None, model=model, tail=0.5)[:, 0]
    expected_s = [0.0, 0.5, 1.0, 2.0, 3.0]  # without the tempo change: 0, 0.5, 1.0, 1.5, 2.0
    env = np.abs(audio) > 1e-4
    onsets = [i for i in range(1, len(env)) if env[i] and not env[max(0, i - int(0.2 * SR)):i].any()]
    assert (env[0] or onsets[0] < 100) and len(onsets) >= 4
    got = ([0.0] if env[0] or onsets[0] < 100 else []) + [o / SR for o in onsets if o >= 100]
    assert np.allclose(got, expected_s, atol=0.003), got
    assert len(audio) == int(round((3.0 + 0.1 + 0.5) * SR))
    r = subprocess.run([sys.executable, "-m", "instrument", "render", str(tmp_path / "song.mid"), "--model", str(model), "-o",
                        str(tmp_path / "song.wav"), "-q"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0 and "song.wav" in r.stdout, r.stderr
    (tmp_path / "junk.mid").write_bytes(b"MThd nonsense")
    with pytest.raises(ScoreError, match="not a readable Standard MIDI File"):
        render_midi_file(tmp_path / "junk.mid", None, model=model)


def test_record_a_performance_then_render_it_sample_for_sample(tmp_path):
    """The live path (ring buffer, callback, an in-memory sink), its control events logged as played;
    the recorded score, written and read back, renders offline to the same samples."""
    model = engine_model_file(tmp_path / "m.onnx", categories=GESTURES)
    sink = MemorySink(SR, 128)
    with Engine(str(model), EngineConfig(SR, 128, seed=5), sink=sink, sync=True) as live:
        event_log = []
        live.listen(event=lambda at, command, posted: command.kind == "swap" or event_log.append((at, command)))
        live.start()
        played = [sink.pull(10)]
        live.trigger("trigger", 0.9)
        live.set("macro1", 0.4)
        played.append(sink.pull(30))
        live.set("layer", 1)
        live.morph(0.3, 0.8)
        live.note_on(67, 0.7, category="continuous_variation")
        played.append(sink.pull(50))
        live.note_off(67)
        live.set_latent(np.full(8, 0.2))
        live.set("morph_path", 0.6)
        live.trigger(None, 0.5, pitch=-5)
        played.append(sink.pull(60))
        live.all_notes_off()
        live.set_latent(None)
        played.append(sink.pull(40))
        live_out = np.concatenate(played)
        take = score_from_log(event_log, live, str(model), len(live_out) / SR)
    take.save(tmp_path / "take.toml")
    again = load_score(tmp_path / "take.toml")
    assert again.time == "samples" and len(again.events) == len(take.events) == 11
    offline = render_score(again)
    assert np.abs(live_out).max() > 0.05
    assert offline.shape == live_out.shape and np.array_equal(offline, live_out)


def test_ramps_and_morph_paths_sound_the_same_live_as_in_a_score(tmp_path):
    """A score's ramp and morph path are the commands the live engine takes (the mixer steps them), so the
    score rendered offline and the same calls played through the live path give the same samples."""
    model = engine_model_file(tmp_path / "m.onnx", categories=GESTURES)
    sc = Score(model=str(model), sample_rate=SR, seed=3, duration=2.0, tail=0.5, block=128)
    sc.at(0).set(macro1=0.1, layer=True).trigger("trigger")
    sc.at(0.1).ramp("macro1", to=0.9, over=1.0)
    sc.at(0.2).morph([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]], over=1.2)
    sc.at(0.5).ramp("gain", to=-9.0, over=0.6, start=-1.0).trigger("continuous_variation")
    offline = render_score(sc)
    sink = MemorySink(SR, 128)
    with Engine(str(model), EngineConfig(SR, 128, seed=3), sink=sink, sync=True) as live:
        applied = []
        live.listen(event=lambda at, command, posted: applied.append(command.kind))
        live.set("macro1", 0.1, at=0)
        live.set("layer", 1, at=0)
        live.trigger("trigger", at=0)
        live.ramp("macro1", 0.9, 1.0, at=int(0.1 * SR))
        live.morph_path([(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)], 1.2, at=int(0.2 * SR))
        live.ramp("gain", -9.0, 0.6, start=-1.0, at=int(0.5 * SR))
        live.trigger("continuous_variation", at=int(0.5 * SR))
        live.start()
        played = sink.pull(int(np.ceil(len(offline) / 128)))[: len(offline)]
        end = dict(live.values)
    assert applied.count("ramp") == 2 and applied.count("morph") == 1  # listeners see each move once, not its steps
    assert end["macro1"] == pytest.approx(0.9) and end["gain"] == pytest.approx(-9.0)
    assert (end["morph_x"], end["morph_y"]) == (1.0, 1.0)
    assert np.abs(offline).max() > 0.05 and np.array_equal(played, offline)


def test_render_command_writes_wav_and_png_and_refuses_bad_scores(tmp_path, model):
    p = write(tmp_path, HEAD + "\n[[event]]\nat = 0\ntrigger = \"trigger\"\n", model)
    r = subprocess.run([sys.executable, "-m", "instrument", "render", str(p), "-o", str(tmp_path / "out.wav"), "--png"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "rendering" in r.stderr  # the progress bar
    assert sf.info(str(tmp_path / "out.wav")).frames == int(2.5 * SR) and (tmp_path / "out.png").stat().st_size > 1000
    p.write_text(HEAD + "\n[[event]]\nat = 0\ntrgger = 1\n")
    r = subprocess.run([sys.executable, "-m", "instrument", "render", str(p), "-o", str(tmp_path / "bad.wav")],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and "event 1 (line 8): unknown event kind 'trgger'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad.wav").exists()
    script = tmp_path / "boom.py"
    script.write_text("raise RuntimeError('my bug')\n")
    r = subprocess.run([sys.executable, "-m", "instrument", "render", str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "the score script" in r.stderr and "RuntimeError: my bug" in r.stderr and 'line 1' in r.stderr


@pytest.mark.parametrize("piece", sorted((REPO / "presets" / "scores").glob("*.toml")) + sorted((REPO / "presets" / "scores").glob("*.py")),
                         ids=lambda p: p.name)
def test_every_shipped_score_renders(piece, model):
    score = run_script(piece) if piece.suffix == ".py" else load_score(piece)
    audio = render_score(score, model=model)
    assert len(audio) == int(round((score.length_seconds() + score.tail) * score.sample_rate))
    assert np.isfinite(audio).all() and 0.01 < np.abs(audio).max() <= db_to_gain(-0.3) + 1e-6


def test_every_shipped_preset_recalls(model):
    from instrument.presets import PresetLibrary, recall

    lib = PresetLibrary([REPO / "presets" / "params"])
    assert set(lib.names()) >= {"init", "glass-rain", "slow-bells", "pulse-drone"}
    with Engine(engine_model(categories=GESTURES), sync=True) as eng:
        for name in lib.names():
            assert recall(eng, lib.find(name)) == []
            eng.process_block()
