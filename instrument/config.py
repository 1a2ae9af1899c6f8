"""The engine's settings: rate, block, channels, how far it renders ahead, its seed, where the model
runs, and the live thread's real-time priority. Checked once, when made (a bad value is one line)."""

from __future__ import annotations

from dataclasses import dataclass

from .realtime import ENGINE_RT_PRIORITY


@dataclass(frozen=True)
class EngineConfig:
    sample_rate: int = 48000
    block_frames: int = 128
    channels: int = 2
    buffer_blocks: int = 3  # how far the engine renders ahead of the audio callback (latency vs safety)
    seed: int = 0  # trigger variations and layer drift are drawn from this
    provider: str = "auto"
    threads: int | None = None
    max_batch: int = 8
    rt_priority: int = ENGINE_RT_PRIORITY  # the live engine thread's SCHED_FIFO priority where allowed; 0: none (a raised nice instead)

    def __post_init__(self) -> None:
        if not 8000 <= self.sample_rate <= 384000:
            raise ValueError(f"sample_rate must be between 8000 and 384000 Hz, got {self.sample_rate}")
        if not 1 <= self.block_frames <= 8192:
            raise ValueError(f"block_frames must be between 1 and 8192, got {self.block_frames}")
        if not 1 <= self.channels <= 64:
            raise ValueError(f"channels must be between 1 and 64, got {self.channels}")
        if not 1 <= self.buffer_blocks <= 64:
            raise ValueError(f"buffer_blocks must be between 1 and 64, got {self.buffer_blocks}")
        if not 0 <= self.rt_priority <= 98:
            raise ValueError(f"rt_priority must be between 0 (off) and 98, got {self.rt_priority}")
