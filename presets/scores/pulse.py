"""A score written as code: `gesturegan render presets/scores/pulse.py --png`.

Thirty-two bars of a pulse that drifts between the four gestures, with seeded randomness: the same seed
gives the same piece, byte for byte. The script only has to leave a Score in the variable `score`.
"""

from instrument.score import Score

score = Score(title="Pulse", model="default", time="beats", tempo=112, duration=128, tail=3.0, seed=5)
rng = score.rng  # random.Random(seed): randomness the seed repeats

score.at(0).set(variation=0.1, layer_rate=3.0, gain=-3.0).mix({"continuous_repetition": 1.0}).layer(True)
score.at(0).ramp("morph_path", to=1.0, over=96, start=0.0)      # the layer walks every category in order
score.at(96).ramp("layer_db", to=-50.0, over=32)

categories = ["trigger", "trigger_continuous", "continuous_variation", "continuous_repetition"]
scale = [0, 2, 3, 7, 10, 12]
for beat in range(0, 124):
    for half in (0.0, 0.5):
        if rng.random() < (0.9 if half == 0.0 else 0.35):
            accent = beat % 4 == 0 and half == 0.0
            score.at(beat + half).trigger(categories[min(3, beat // 32)] if rng.random() < 0.7 else rng.choice(categories),
                                          velocity=0.85 if accent else round(rng.uniform(0.35, 0.6), 3),
                                          pitch=rng.choice(scale) - (12 if accent else 0))
score.at(124).all_notes_off()
