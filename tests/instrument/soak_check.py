"""The 60-s real-time soak, run by test_jack.py in a process of its own: a performer's ``gesturegan play``
process holds the engine and nothing else, while the pytest process also holds torch, every test's
objects and their threads. Prints the engine's status as JSON. Not collected by pytest."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from instrument.audio import SoundDeviceSink  # noqa: E402
from instrument.engine import Engine, EngineConfig  # noqa: E402
from tests.instrument.onnx_models import engine_model  # noqa: E402


def main(device: int, seconds: float) -> None:
    sink = SoundDeviceSink(48000, 128, 2, device)
    with Engine(engine_model(n_samples=16384), EngineConfig(48000, 128), sink=sink) as eng:
        eng.set("layer", 1)
        eng.set("layer_rate", 10)
        eng.set("variation", 0.3)
        eng.start()
        rng = np.random.default_rng(0)
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < seconds:
            eng.set(f"macro{1 + k % 8}", float(rng.uniform(-1, 1)))
            if k % 10 == 0:
                eng.trigger(int(rng.integers(3)), float(rng.uniform(0.3, 1)))
            k += 1
            time.sleep(0.005)
        st = eng.status()
    print(json.dumps({k: v for k, v in st.items() if not isinstance(v, (dict, list))}))


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
