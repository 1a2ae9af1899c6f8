"""The schedule: commands posted from any thread, on their way to the mixer in sample order.

:meth:`Schedule.post` (any thread) puts a command on a lock-free queue with its sample (or "as soon as
possible") and the order it was posted in; the mixer's thread drains the queue into a heap ordered by
(sample, posting order) at each block and takes out what falls inside the block (:meth:`Schedule.due`).

**Bounded work per block.** However many commands land in one block (a flood of OSC bundles, a MIDI
file's dense passage), a block applies at most ``MAX_PER_BLOCK`` of them: each applied command cuts
the block into one more span to render, so an unbounded number would make one block take unbounded
time and the audio underrun. The rest wait for the next block, in order, and are counted
(``deferred_commands``): under a flood the last commands of a block sound a block later instead of the
whole output dropping out. Ordinary playing never comes near the cap (a dense score puts a few
commands in a block); a score's ramps are steps 50 ms apart.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import time
from dataclasses import dataclass, field

from .commands import Command

MAX_PER_BLOCK = 64  # commands applied in one block; the rest wait a block (counted)


@dataclass(order=True)
class Event:
    """A posted command: its sample (-1 until an as-soon-as-possible one is given the next), the order it
    was posted in (ties keep it), when (``time.perf_counter()``), and whether it is one step of a ramp
    (listeners saw the ramp itself)."""

    time: int
    seq: int
    command: Command = field(compare=False)
    asap: bool = field(compare=False, default=False)
    posted: float = field(compare=False, default=0.0)
    step: bool = field(compare=False, default=False)


class Schedule:
    """Posted commands in sample order (see the module docstring). ``post`` from any thread; the rest from
    the mixer's thread only."""

    def __init__(self, max_per_block: int = MAX_PER_BLOCK) -> None:
        self.max_per_block = max_per_block
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._heap: list[Event] = []
        self._seq = itertools.count()
        self.deferred = 0  # commands moved to the next block by the per-block cap

    def post(self, command: Command, at: int | None) -> None:
        self._queue.put(Event(int(at) if at is not None else -1, next(self._seq), command, at is None, time.perf_counter()))

    def push_step(self, at: int, origin: Event, command: Command) -> None:
        """One step of a ramp or path, in the ramp's own place in the posting order (its ``seq``): at a tie
        with another command, a step comes where the ramp came."""
        heapq.heappush(self._heap, Event(at, origin.seq, command, posted=origin.posted, step=True))

    def drain(self, now: int) -> None:
        """Move what was posted into the heap; as-soon-as-possible commands get sample ``now``."""
        while True:
            try:
                ev = self._queue.get_nowait()
            except queue.Empty:
                return
            if ev.asap:
                ev.time = now
            heapq.heappush(self._heap, ev)

    def due(self, start: int, end: int):
        """Yield the events of the block ``[start, end)`` in (sample, posting) order; one whose sample has
        passed is the caller's to apply at once. Steps a command pushes while this runs are taken in the
        same block when they fall in it. After ``max_per_block``, what is left of the block moves to
        ``end`` (counted deferred)."""
        applied = 0
        while self._heap and self._heap[0].time < end:
            if applied >= self.max_per_block:
                self._defer(end)
                return
            applied += 1
            yield heapq.heappop(self._heap)

    def _defer(self, end: int) -> None:
        keep, moved = [], []
        for ev in self._heap:
            (moved if ev.time < end else keep).append(ev)
        for ev in moved:  # (sample, seq) order is kept among them: all at end, in posting order
            ev.time = end
        self.deferred += len(moved)
        self._heap = keep + moved
        heapq.heapify(self._heap)

    def next_time(self) -> int | None:
        """The sample of the next command (the mixer's thread, after :meth:`drain`), or None; -1 while one
        posted as soon as possible waits in the queue."""
        if not self._queue.empty():
            return -1
        return self._heap[0].time if self._heap else None

    def __len__(self) -> int:
        return len(self._heap) + self._queue.qsize()
