"""Progress lines for long work, and the stop signal for long-running processes."""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time


class Progress:
    """Called with the count done so far; prints at most every `every` seconds to stderr."""

    def __init__(self, label: str, total: int | None = None, every: float = 2.0) -> None:
        self.label = label
        self.total = total
        self.every = every
        self.started = time.monotonic()
        self.printed = self.started

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.printed < self.every and done != self.total:
            return
        self.printed = now
        rate = done / max(now - self.started, 1e-9)
        share = f"/{self.total:,} ({done / self.total:.0%})" if self.total else ""
        print(f"{self.label}: {done:,}{share} at {rate:,.0f}/s", file=sys.stderr, flush=True)


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so loops can finish their tick and record a clean stop.

    The handler runs in the main thread between two bytecodes, also while that thread is inside
    `stop.wait()` holding the event's lock: `stop.set()` there would wait for that lock forever (an agent
    once hung so on its SIGTERM). The handler only puts the signal on a queue whose `put` is reentrant, and
    a thread of its own sets the event.
    """
    stop = threading.Event()
    received: queue.SimpleQueue[int] = queue.SimpleQueue()

    def set_on_signal() -> None:
        received.get()
        stop.set()

    threading.Thread(target=set_on_signal, name="stop-on-signal", daemon=True).start()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, _frame: received.put(signum))
    return stop
