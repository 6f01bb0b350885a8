"""The stop signal of the long-running processes: SIGTERM and SIGINT set `stop` whatever the main thread holds."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# The moment that hung an agent: the signal arrives while the main thread, inside `stop.wait()`, holds the
# event's own lock (it has just taken it back). `raise_signal` runs the handler right there.
PROBE = """
import signal
from tradeledger.adapters.progress import stop_on_signals

stop = stop_on_signals()
with stop._cond:
    signal.raise_signal(signal.SIGTERM)
print("set" if stop.wait(timeout=10) else "not set")
"""


def test_a_signal_while_the_main_thread_holds_the_stop_event_s_lock_still_sets_it() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "set", result.stderr
