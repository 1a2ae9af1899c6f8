"""Decoding any audio file to mono float32 at a target sample rate.

Every sample format is normalised the same way: libsndfile converts integer PCM to float by dividing
by its full scale (2**15 for int16, 2**23 for int24, 2**31 for int32, 128 around 128 for unsigned
8-bit), so the same waveform stored as int16, int24, int32 or float reads back as the same numbers.
Reading integer files through another path (raw int32 divided by 32768, say) is how a research
pipeline ended up with wildly over-scaled clips; we never do that.

Float files may legally exceed full scale. Those, and the small overshoot a band-limited resampler
can add, are scaled down by their peak instead of being clipped, and the scale is reported.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

#: File name extensions that ingest reads (lower case, with the dot).
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".mp3")

RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")

# libsndfile's log line for a WAV/AIFF data chunk cut short, e.g. "data : 32000 (should be 15978)".
_TRUNCATED_CHUNK = re.compile(r"(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)")


class DecodeError(Exception):
    """A file that cannot be used as audio. ``reason`` is a short phrase for the ingest report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedAudio:
    """Mono audio at ``sample_rate``; ``samples : [T]`` float32 with peak <= 1."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    source_subtype: str
    source_format: str
    gain: float  # the factor applied to bring the file into [-1, 1]; 1.0 when none was needed


def read_mono(path: str, target_sample_rate: int, quality: str = "HQ") -> DecodedAudio:
    """Decode ``path``, mix down to mono, resample with soxr to ``target_sample_rate``.

    Raises :class:`DecodeError` for anything that is not usable audio (corrupt, truncated, empty,
    not audio, unreadable, non-finite samples).
    """
    if quality not in RESAMPLE_QUALITIES:
        raise ValueError(f"resample quality must be one of {', '.join(RESAMPLE_QUALITIES)}, got {quality!r}")
    try:
        with sf.SoundFile(path) as f:
            source_rate = int(f.samplerate)
            channels = int(f.channels)
            subtype = str(f.subtype)
            fmt = str(f.format)
            declared = int(f.frames)
            log = f.extra_info or ""
            data = f.read(dtype="float32", always_2d=True)
    except FileNotFoundError as e:
        raise DecodeError("unreadable", str(e)) from None
    except PermissionError as e:
        raise DecodeError("unreadable", str(e)) from None
    except IsADirectoryError as e:
        raise DecodeError("unreadable", str(e)) from None
    except (sf.LibsndfileError, RuntimeError) as e:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise DecodeError("empty", "zero-length file") from None
        raise DecodeError(_classify_libsndfile(str(e)), _one_line(str(e))) from None
    except OSError as e:
        raise DecodeError("unreadable", str(e)) from None

    short = _TRUNCATED_CHUNK.search(log)
    if short:  # libsndfile shortens a cut-off data chunk silently and only says so in its log
        raise DecodeError("truncated", f"data chunk declares {short.group(1)} bytes, only {short.group(2)} present")
    if data.shape[0] == 0:
        raise DecodeError("empty", "the file holds no audio frames")
    # MP3 frame counts come from the Xing/Info header and may be an estimate: allow 5 %.
    tolerance = 0.95 if fmt == "MPEG" else 1.0
    if declared > 0 and data.shape[0] < tolerance * declared:
        raise DecodeError("truncated", f"header declares {declared} frames, only {data.shape[0]} readable")
    if source_rate <= 0:
        raise DecodeError("corrupt", f"sample rate {source_rate} Hz")
    if not np.isfinite(data).all():
        raise DecodeError("non-finite samples", "the file contains NaN or Inf values")

    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    gain = 1.0
    peak = float(np.max(np.abs(mono)))
    if peak > 1.0:  # only float files can get here: scale down, never clip
        gain = 1.0 / peak
        mono = mono * np.float32(gain)
    if source_rate != target_sample_rate:
        mono = soxr.resample(mono, source_rate, target_sample_rate, quality=quality).astype(np.float32, copy=False)
        peak = float(np.max(np.abs(mono))) if mono.size else 0.0
        if peak > 1.0:  # band-limited overshoot of a full-scale edge
            gain /= peak
            mono = mono / np.float32(peak)
    return DecodedAudio(
        samples=np.ascontiguousarray(mono, dtype=np.float32),
        sample_rate=target_sample_rate,
        source_sample_rate=source_rate,
        source_channels=channels,
        source_subtype=subtype,
        source_format=fmt,
        gain=gain,
    )


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _classify_libsndfile(message: str) -> str:
    m = message.lower()
    if "format not recognised" in m or "unknown format" in m or "not a" in m:
        return "not audio"
    if "no such file" in m or "permission" in m or "system error" in m:
        return "unreadable"
    if "truncat" in m or "unexpected end" in m:
        return "truncated"
    return "corrupt"


def dbfs(level: float) -> float:
    """Linear amplitude -> dBFS, with silence as -inf."""
    return 20.0 * math.log10(level) if level > 0 else -math.inf
