"""The SPSC ring buffer: order, wrap-around, shortfalls, odd block sizes, and two real threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from instrument.ringbuffer import RingBuffer


@pytest.mark.parametrize("capacity", [3, 0, 100])
def test_capacity_must_be_a_power_of_two(capacity):
    with pytest.raises(ValueError, match="power of 2"):
        RingBuffer(capacity)


@pytest.mark.parametrize("block", [1, 64, 65, 8193])
def test_stream_survives_wrap_around_at_awkward_block_sizes(block):
    rb = RingBuffer(16384, 2)
    rng = np.random.default_rng(block)
    data = rng.standard_normal((60000, 2)).astype(np.float32)
    got, w = [], 0
    out = np.empty((block, 2), np.float32)
    while len(got) * block < len(data) - block:
        if w < len(data):
            w += rb.write(data[w : w + rng.integers(1, 3 * block + 2)])
        n = rb.readinto(out)
        if n == block:
            got.append(out.copy())
        elif n:  # partial read: keep it, it is still in order
            got.append(out[:n].copy())
    stream = np.concatenate(got)
    assert np.array_equal(stream, data[: len(stream)])
    assert rb.frames_read == len(stream)


def test_short_read_returns_what_there_is_and_write_never_overfills():
    rb = RingBuffer(8, 1)
    assert rb.write(np.arange(20, dtype=np.float32)) == 8 and rb.write_available == 0
    out = np.full((5, 1), -1, np.float32)
    assert rb.readinto(out) == 5 and out[:, 0].tolist() == [0, 1, 2, 3, 4]
    out[:] = -1
    assert rb.readinto(out) == 3 and out[:3, 0].tolist() == [5, 6, 7] and (out[3:] == -1).all()
    assert rb.read_available == 0 and rb.readinto(out) == 0


def test_one_writer_and_one_reader_thread_keep_every_frame_in_order():
    rb = RingBuffer(256, 1)
    total = 200_000
    got = np.empty(total, np.float32)

    def writer():
        i = 0
        while i < total:
            i += rb.write(np.arange(i, min(total, i + 97), dtype=np.float32))

    def reader():
        i, out = 0, np.empty((64, 1), np.float32)
        while i < total:
            n = rb.readinto(out[: min(64, total - i)])
            got[i : i + n] = out[:n, 0]
            i += n

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert np.array_equal(got, np.arange(total, dtype=np.float32))


def _play(sink, ring, underflow: bool) -> None:
    """One callback of the real audio callback, with the device reporting an underflow or not."""
    from instrument.audio import _Time

    class Status:
        output_underflow = underflow

    sink._cb(np.empty((128, 1), np.float32), 128, _Time(0.0), Status())


def test_underruns_are_judged_against_the_xruns_around_them_however_many_there_were():
    """2,000 callbacks with the device underflowing each one, then 1,000 without; the ring is always
    empty, so every callback underruns. The first 2,000 and the 32 after them are the host's; the other
    968 the engine's, although 2,000 xruns overflowed the 1,024-entry log (judged only at the end against
    the last 1,024 xruns, the old underruns all counted as the engine's)."""
    from instrument.audio import XRUN_WINDOW, MemorySink, make_callback

    sink = MemorySink(48000, 128, channels=1)
    ring = RingBuffer(256, 1)
    sink._cb = make_callback(ring, sink.counters, sink.stamps, sink.events)
    for n in range(3000):
        _play(sink, ring, underflow=n < 2000)
        sink.classify()  # as the engine thread does after each block
    st = sink.stats()
    assert st["underruns"] == 3000 and st["device_underflows"] == 2000
    assert st["engine_underruns"] == 1000 - XRUN_WINDOW
    # the recent ones are judged provisionally: one more xrun now excuses the last 32
    _play(sink, ring, underflow=True)
    assert sink.stats()["engine_underruns"] == 1000 - 2 * XRUN_WINDOW
