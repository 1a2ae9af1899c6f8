"""The real-time settings of a live process, in one place: how the threads are scheduled and what
Python is told so that a Python audio callback gets the GIL in time. Only the live engine applies them
(:meth:`instrument.engine.Engine.start`, configured by :class:`~instrument.engine.EngineConfig`);
offline rendering leaves the process as it is.

- The engine thread: ``SCHED_FIFO`` at ``rt_priority`` (default :data:`ENGINE_RT_PRIORITY`, below JACK's
  own threads) where the machine allows it, as one set up for JACK does; else a raised priority (nice
  :data:`ENGINE_NICE`) where allowed; else the default.
- The threads that receive gestures (OSC, MIDI): ``SCHED_FIFO`` at :data:`CONTROL_RT_PRIORITY`, else nice
  :data:`ENGINE_NICE` (:func:`raise_control_thread`).
- The generation worker: ``SCHED_FIFO`` at :data:`URGENT_RT_PRIORITY` (else nice 0) while it makes a clip a
  trigger waits for (:func:`set_worker_urgency`); otherwise nice :data:`WORKER_NICE`, background work (the engine thread and the callback
  come first).
- Python's switch interval: :data:`SWITCH_INTERVAL_S` instead of 5 ms, longer than a 2.7-ms block.
- The garbage collector: everything alive when the performance starts is frozen out of later
  collections, which then stay short.
"""

from __future__ import annotations

import gc
import os
import sys
import threading

ENGINE_RT_PRIORITY = 3  # SCHED_FIFO, below JACK's own threads (the server's 10, its clients' process threads at 5, where
#                         the C core's callback runs): a Python thread at their level measurably delayed them
CONTROL_RT_PRIORITY = 4  # the threads that receive a performer's gestures (OSC, MIDI): above the engine thread (they hand
#                          the core a gesture themselves), below JACK's
ENGINE_NICE = -10
WORKER_NICE = 10
SWITCH_INTERVAL_S = 0.0005  # how long Python lets one thread hold the GIL (default 5 ms: longer than a block)


def set_thread_realtime(priority: int) -> bool:
    """Best effort: SCHED_FIFO at ``priority`` for the calling thread (Linux; needs root, CAP_SYS_NICE or
    an rtprio limit, as a machine set up for JACK has). Returns whether it took."""
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, OSError):
        return False


def set_thread_nice(nice: int) -> bool:
    """Best effort: give the calling thread scheduling niceness ``nice`` (Linux: per thread). Lowering
    it below 0 needs privileges; returns whether it took."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        return True
    except (AttributeError, OSError):
        return False


def raise_engine_thread(rt_priority: int) -> bool:
    """The calling (engine) thread: SCHED_FIFO at ``rt_priority`` (0: not tried), else nice
    :data:`ENGINE_NICE`. Returns whether either took."""
    return (rt_priority > 0 and set_thread_realtime(rt_priority)) or set_thread_nice(ENGINE_NICE)


def raise_control_thread() -> bool:
    """The calling thread receives gestures (the OSC server, the MIDI input): SCHED_FIFO at
    :data:`CONTROL_RT_PRIORITY` where allowed, else nice :data:`ENGINE_NICE`, so a packet is read as soon as it
    arrives rather than when the scheduler gets round to a normal thread (on a busy 2-core machine: up to
    4.6 ms, measured). Its work per message is small and bounded; the audio itself runs in the C callback,
    at JACK's higher priority."""
    return set_thread_realtime(CONTROL_RT_PRIORITY) or set_thread_nice(ENGINE_NICE)


URGENT_RT_PRIORITY = 2  # the worker while it makes a clip someone is waiting for: below every other real-time thread of ours


def set_worker_urgency(urgent: bool) -> None:
    """The generation worker: SCHED_FIFO at :data:`URGENT_RT_PRIORITY` (else nice 0) while it makes a clip a
    trigger waits for, back to nice :data:`WORKER_NICE` for render-ahead. At nice 10 beside two CPU-bound
    processes, a waited-for clip queued behind them for tens of milliseconds."""
    tid = threading.get_native_id()
    try:
        if urgent:
            if not set_thread_realtime(URGENT_RT_PRIORITY):
                set_thread_nice(0)
        else:
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
            set_thread_nice(WORKER_NICE)
    except (AttributeError, OSError):
        pass


def tune_process_for_live(freeze_gc: bool = True) -> None:
    """Python's side of a live performance (idempotent).

    The audio callback is Python: PortAudio's thread must take the GIL to run it, and with the default
    5-ms switch interval a busy engine or worker thread can hold it for longer than a 2.7-ms block. A
    full garbage collection walks every object while holding the GIL: 11 ms in a process with only the
    engine loaded, 97 ms with torch loaded (measured), several blocks of silence; everything alive now
    (modules, the model, the tables) is frozen out of later collections."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    if freeze_gc:
        gc.collect()
        gc.freeze()
