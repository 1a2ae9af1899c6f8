"""The command vocabulary: each command is checked once, when it is made, against the model's table,
categories and latent size; commands are frozen values; a command written as a score event and read back
is the same command."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from instrument.commands import (NOTE_PITCH, VELOCITY, AllNotesOff, Latent, NoteOff, Ramp, Set, Trigger, Vocabulary,
                                 ramp_seconds, score_event)
from instrument.params import MIX_PATH, MIX_WEIGHTS, MIX_XY, ParamError, build_table
from instrument.score import Event, Score, check_event

CATS = ("hit", "ring", "swell")


@pytest.fixture
def vocab():
    return Vocabulary(build_table(CATS), CATS, 4, clip_latent=lambda z: np.clip(z, -1, 1))


def test_triggers_and_notes(vocab):
    assert vocab.trigger() == Trigger(None, 1.0, 0.0, None)
    assert vocab.trigger("ring", 0.5, 7) == Trigger(1, 0.5, 7.0, None)
    assert vocab.trigger(2, 2.0, 99) == Trigger(2, VELOCITY.max, NOTE_PITCH.max)  # clamped, like a knob
    assert vocab.note_on(64, 1.0, root=60) == Trigger(None, 1.0, 4.0, 64)
    assert vocab.note_on(60.0, 0.5, "hit") == Trigger(0, 0.5, 0.0, 60)  # Pd sends every number as a float
    assert vocab.note_off(64) == NoteOff(64)
    for bad, message in ((lambda: vocab.trigger("bell"), "unknown category 'bell'; this model has hit, ring, swell"),
                         (lambda: vocab.trigger(3), r"category index must be 0\.\.2, got 3"),
                         (lambda: vocab.trigger("hit", float("nan")), "velocity must be a finite number"),
                         (lambda: vocab.note_on(128), r"note must be 0\.\.127, got 128"),
                         (lambda: vocab.note_on(60.5), "note must be a whole number, got 60.5"),
                         (lambda: vocab.note_off(True), "note must be a whole number")):
        with pytest.raises(ParamError, match=message):
            bad()


def test_sets_are_checked_against_the_table_and_imply_the_mix_mode(vocab):
    assert vocab.set("macro1", 2.0) == Set((("macro1", 1.0),))  # clamped per the table
    assert vocab.set("morph_x", 0.5).as_dict() == {"morph_x": 0.5, "mix_mode": MIX_XY}
    assert vocab.set("morph_path", 0.5).as_dict() == {"morph_path": 0.5, "mix_mode": MIX_PATH}
    assert vocab.set("weight.ring", 1).as_dict() == {"weight.ring": 1.0, "mix_mode": MIX_WEIGHTS}
    assert vocab.set_values({"morph_x": 0.5}).as_dict() == {"morph_x": 0.5}  # a preset: exactly as given
    assert vocab.morph(0.25, 1).as_dict() == {"morph_x": 0.25, "morph_y": 1.0, "mix_mode": MIX_XY}
    assert vocab.mix({"ring": 1}).as_dict() == {"weight.hit": 0.0, "weight.ring": 1.0, "weight.swell": 0.0, "mix_mode": MIX_WEIGHTS}
    assert vocab.mix([0, 0.5, 1]).as_dict()["weight.swell"] == 1.0
    for bad, message in ((lambda: vocab.set("seed", 7.5), "seed must be a whole number, got 7.5"),
                         (lambda: vocab.set("nope", 1), "nope"),
                         (lambda: vocab.set_values({"gain": -6, "seed": -1}), "seed must be between"),  # one bad value refuses all
                         (lambda: vocab.mix({"bell": 1}), r"unknown categories \['bell'\]"),
                         (lambda: vocab.mix([1, 0]), "the mix needs 3 weights, got 2")):
        with pytest.raises(ParamError, match=message):
            bad()


def test_latents_are_checked_and_kept_in_the_support(vocab):
    assert vocab.latent(None) == Latent(None)
    assert vocab.latent([0.5, 3, -3, 0]).z == (0.5, 1.0, -1.0, 0.0)
    with pytest.raises(ParamError, match="the latent needs 4 values, got 3"):
        vocab.latent([0, 0, 0])
    with pytest.raises(ParamError, match="finite"):
        vocab.latent([0, 0, 0, np.inf])


def test_commands_are_frozen_values(vocab):
    t = vocab.trigger("hit")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.velocity = 0.1  # type: ignore[misc]
    assert t == vocab.trigger("hit") and hash(t) == hash(vocab.trigger("hit"))
    assert [c.kind for c in (t, NoteOff(1), AllNotesOff(), Set(()), Latent(None))] == ["trigger", "note_off", "all_notes_off", "set", "latent"]


def test_a_command_written_as_a_score_event_passes_the_score_check_and_means_the_same(vocab):
    commands = [vocab.trigger("ring", 0.5, -3), vocab.trigger(None, 0.25), vocab.note_on(67, 0.7, "swell", root=60),
                vocab.note_off(67), AllNotesOff(), vocab.morph(0.3, 0.8), vocab.latent([0.1, 0.2, 0.3, 0.4]), vocab.latent(None),
                vocab.ramp("macro1", 0.7, 4800), vocab.ramp("gain", -6, 0, start=-12), vocab.morph_path([(0, 0), (1, 0.5)], 96000)]
    table = build_table(CATS)
    for i, c in enumerate(commands):
        kind, value, fields = score_event(c, CATS)
        check_event(table, Event(float(i), kind, value, fields), f"event {i}")
    assert score_event(commands[2], CATS) == ("note", 67, {"velocity": 0.7, "root": 60, "category": "swell"})
    assert score_event(commands[0], CATS) == ("trigger", "ring", {"velocity": 0.5, "pitch": -3.0})
    assert Score().time == "seconds"  # a score of these commands needs nothing else
    assert score_event(commands[8], CATS) == ("ramp", "macro1", {"to": 0.7, "over": 4800})  # spans in samples: a log's score
    assert score_event(commands[10], CATS) == ("morph", [[0.0, 0.0], [1.0, 0.5]], {"over": 96000})


def test_ramps_and_paths_are_checked_and_step_to_their_end(vocab):
    r = vocab.ramp("macro1", 5.0, 1000)  # clamped, as a set is
    assert r == Ramp("macro1", 1.0, 1000, None) and vocab.ramp("gain", -6, 10.4, start=-12).span == 10
    steps = r.steps(0.0, 100)
    assert steps[0] == (0, 0.0) and steps[-1] == (1000, 1.0) and len(steps) == 11
    assert all(b[0] > a[0] and b[1] > a[1] for a, b in zip(steps, steps[1:]))
    assert vocab.ramp("macro1", 0.5, 0).steps(0.2, 100) == [(0, 0.5)]  # no span: straight to the end
    path = vocab.morph_path([(0, 0), (1, 0), (1, 1)], 2000)
    xy = path.steps(100)
    assert xy[0] == (0, 0.0, 0.0) and xy[-1] == (2000, 1.0, 1.0) and (1000, 1.0, 0.0) in xy  # constant speed
    assert vocab.morph_path([(0.3, 0.4)], 500).steps(100) == [(0, 0.3, 0.4)]
    for bad in (lambda: vocab.ramp("nope", 1, 10), lambda: vocab.ramp("macro1", float("nan"), 10),
                lambda: vocab.ramp("macro1", 1, -5), lambda: vocab.ramp("macro1", 1, float("inf")),
                lambda: vocab.morph_path([], 10), lambda: vocab.morph_path([(0, 1, 2)], 10),
                lambda: vocab.morph_path([(0, float("nan"))], 10), lambda: ramp_seconds(3601), lambda: ramp_seconds(True)):
        with pytest.raises(ParamError):
            bad()
