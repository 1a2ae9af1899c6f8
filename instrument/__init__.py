"""GestureGAN's instrument: the real-time engine and what it needs (no PyTorch).

``from instrument import Engine, EngineConfig, SoundDeviceSink`` is the Python API; see README.md.
"""

from .audio import MemorySink, SoundDeviceSink
from .engine import Engine, EngineConfig
from .model import load_model
from .params import ParamError, build_table

__all__ = ["Engine", "EngineConfig", "MemorySink", "SoundDeviceSink", "ParamError", "build_table", "load_model"]
