"""The components of one process on their own threads, where a component that dies stops them all.

`tradeledger run` is several long-running components in one process (the
projector, the paced agent, the Telegram bot, beside the API on the main
thread). A process where one of them has died but the others go on serving is
silently degraded, so a component that raises, or returns a non-zero exit
status, sets the shared stop event: every other component then stops as on
SIGTERM (each recording its Stopped), and the process exits non-zero naming
the first component that failed and why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import msgspec

log = logging.getLogger(__name__)


class Failure(msgspec.Struct, frozen=True):
    component: str
    error: str

    def __str__(self) -> str:
        return f"the {self.component} component failed: {self.error}"


class Supervisor:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.threads: list[threading.Thread] = []
        self.failures: list[Failure] = []
        self.lock = threading.Lock()

    @property
    def failure(self) -> Failure | None:
        """The first component that failed; None when none did."""
        return self.failures[0] if self.failures else None

    def start(self, name: str, work: Callable[[], int | None]) -> None:
        """Run `work` on a thread named `name`; an exception or a non-zero return is its failure."""

        def body() -> None:
            try:
                status = work()
            except Exception as error:  # noqa: BLE001 - reported as this component's failure
                # At debug level: the process reports the failure in one line, never a traceback.
                log.debug("the %s component failed", name, exc_info=True)
                self.fail(Failure(name, f"{type(error).__name__}: {error}"))
                return
            if status:
                self.fail(Failure(name, f"exited with status {status} (its log above says why)"))

        thread = threading.Thread(target=body, name=name)
        self.threads.append(thread)
        thread.start()

    def fail(self, failure: Failure) -> None:
        with self.lock:
            self.failures.append(failure)
        self.stop.set()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
