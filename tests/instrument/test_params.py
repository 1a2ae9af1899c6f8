"""The parameter table: shape, defaults, and what happens to bad values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instrument.params import N_MACROS, ParamError, build_table

CATS = ("trigger", "trigger_continuous", "continuous_variation", "continuous_repetition")


def test_table_has_every_control_once_with_defaults_in_range():
    table = build_table(CATS)
    ids = [p.id for p in table]
    assert len(ids) == len(set(ids))
    for required in ["seed", "radius", "variation", "mix_mode", "morph_x", "morph_y", "gain", "ceiling", "crossfade", "pitch",
                     "attack", "release", "polyphony", "layer", "layer_rate", "layer_drift", "layer_loop"]:
        assert required in table
    assert [f"macro{i}" for i in range(1, N_MACROS + 1)] == [i for i in ids if i.startswith("macro")]
    assert [f"weight.{c}" for c in CATS] == [i for i in ids if i.startswith("weight.")]
    for p in table:
        assert p.min <= p.default <= p.max, p.id
        assert p.doc, p.id
    assert table["gain"].unit == "dB" and table["gain"].smoothing_s > 0


def test_values_are_clamped_or_refused_per_the_table():
    t = build_table(CATS)
    assert t.coerce("gain", 40) == 6.0 and t.coerce("gain", -1000) == -80.0
    assert t.coerce("polyphony", 7.6) == 8.0
    assert t.coerce("layer", True) == 1.0 and t.coerce("layer", "off") == 0.0 and t.coerce("layer", 0.7) == 1.0
    assert t.coerce("mix_mode", "xy") == 1.0 and t.coerce("macro3", np.float32(0.25)) == 0.25
    with pytest.raises(ParamError, match=r"seed must be between 0 and 2147483647, got -1"):
        t.coerce("seed", -1)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ParamError, match="gain must be a finite number"):
            t.coerce("gain", bad)
    with pytest.raises(ParamError, match="gain needs a number, got str"):
        t.coerce("gain", "loud")
    with pytest.raises(ParamError, match="gain needs a number, got NoneType"):
        t.coerce("gain", None)
    with pytest.raises(ParamError, match="mix_mode must be one of weights, xy"):
        t.coerce("mix_mode", "polar")
    with pytest.raises(ParamError, match="unknown parameter 'volume'"):
        t.coerce("volume", 1)


def test_markdown_lists_every_parameter():
    t = build_table(CATS)
    md = t.markdown()
    assert all(f"`{p.id}`" in md for p in t) and "refused" in md and "clamped" in md
