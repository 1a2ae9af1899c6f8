"""Spectrogram pictures as PNG files, with numpy and zlib only (no matplotlib on a performer's machine).

``write_spectrogram_png(path, [audio, ...], sample_rate, labels=...)`` draws one tile per sound in a
grid: STFT magnitude in dB on a linear frequency axis, a perceptual colour map, time left to right,
frequency bottom to top. Labels are drawn with a tiny built-in 5x7 pixel font.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from .files import write_atomic

_FONT = {  # 5x7 glyphs, one string of 7 rows x 5 columns per character
    "A": "01110100011000111111100011000110001", "B": "11110100011111010001100011000111110",
    "C": "01110100011000010000100001000101110", "D": "11110100011000110001100011000111110",
    "E": "11111100001111010000100001000011111", "F": "11111100001111010000100001000010000",
    "G": "01110100011000010111100011000101111", "H": "10001100011111110001100011000110001",
    "I": "01110001000010000100001000010001110", "J": "00111000100001000010100101001001100",
    "K": "10001100101010011000101001001010001", "L": "10000100001000010000100001000011111",
    "M": "10001110111010110001100011000110001", "N": "10001110011010110011100011000110001",
    "O": "01110100011000110001100011000101110", "P": "11110100011111010000100001000010000",
    "Q": "01110100011000110001101011001001101", "R": "11110100011111010100100101000110001",
    "S": "01111100000111000001000011000111110", "T": "11111001000010000100001000010000100",
    "U": "10001100011000110001100011000101110", "V": "10001100011000110001100010101000100",
    "W": "10001100011000110101101011101110001", "X": "10001100010101000100010101000110001",
    "Y": "10001100010101000100001000010000100", "Z": "11111000010001000100010001000011111",
    "0": "01110100011001110101110011000101110", "1": "00100011000010000100001000010001110",
    "2": "01110100010000100010001000100011111", "3": "11111000100010000010000011000101110",
    "4": "00010001100101010010111110001000010", "5": "11111100001111000001000011000101110",
    "6": "00110010001000011110100011000101110", "7": "11111000010001000100010000100001000",
    "8": "01110100011000101110100011000101110", "9": "01110100011000101111000010001001100",
    "_": "00000000000000000000000000000011111", "-": "00000000000000011111000000000000000",
    ".": "00000000000000000000000000110001100", " ": "0" * 35, "%": "11001110010001000100010001001110011",
    "/": "00001000010001000100010001000010000", ":": "00000011000110000000011000110000000",
}


def _colormap(v: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB uint8, a dark-blue / magenta / yellow ramp (close to 'magma')."""
    stops = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]], float)
    x = np.clip(v, 0, 1) * (len(stops) - 1)
    i = np.minimum(x.astype(int), len(stops) - 2)
    w = (x - i)[..., None]
    return (stops[i] * (1 - w) + stops[i + 1] * w).astype(np.uint8)


def spectrogram_db(audio: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """``audio : [T]`` -> ``[n_fft // 2 + 1, frames]`` magnitude in dBFS (0 dB = full-scale sine)."""
    x = np.asarray(audio, dtype=np.float64)
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    w = np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames * w, axis=1)).T / (w.sum() / 2)
    return 20 * np.log10(mag + 1e-9)


def _draw_text(img: np.ndarray, text: str, x: int, y: int, scale: int = 1) -> None:
    for ch in text.upper():
        glyph = _FONT.get(ch, _FONT[" "])
        bits = np.array([int(b) for b in glyph], dtype=bool).reshape(7, 5)
        bits = np.kron(bits, np.ones((scale, scale), dtype=bool))
        h, w = bits.shape
        region = img[y : y + h, x : x + w]
        region[bits[: region.shape[0], : region.shape[1]]] = 255
        x += (5 + 1) * scale


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write ``rgb : [H, W, 3]`` uint8 as a PNG (atomic: temp file + rename)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    write_atomic(path, png, unique=True)


def write_spectrogram_png(
    path: str | os.PathLike,
    sounds: list[np.ndarray],
    sample_rate: int,
    labels: list[str] | None = None,
    columns: int = 4,
    tile_height: int = 128,
    floor_db: float = -90.0,
    n_fft: int = 512,
    hop: int = 128,
) -> None:
    """A grid of spectrograms, one tile per sound (``[T]`` float arrays), labelled underneath."""
    if not sounds:
        raise ValueError("write_spectrogram_png needs at least one sound")
    tiles = []
    for audio in sounds:
        db = spectrogram_db(audio, n_fft, hop)[::-1]  # low frequencies at the bottom
        rows = np.linspace(0, db.shape[0] - 1, tile_height).astype(int)
        tiles.append(_colormap((db[rows] - floor_db) / -floor_db))
    tile_w = max(t.shape[1] for t in tiles)
    label_h = 12 if labels else 0
    columns = max(1, min(columns, len(tiles)))
    grid_rows = -(-len(tiles) // columns)
    pad = 4
    img = np.full((grid_rows * (tile_height + label_h + pad) + pad, columns * (tile_w + pad) + pad, 3), 24, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = pad + r * (tile_height + label_h + pad), pad + c * (tile_w + pad)
        img[y : y + tile_height, x : x + tile.shape[1]] = tile
        if labels:
            _draw_text(img, labels[k][: tile_w // 6], x, y + tile_height + 3)
    write_png(path, img)
