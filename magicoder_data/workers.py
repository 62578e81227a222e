"""Worker processes that a Ctrl-C never catches half-started.

A Ctrl-C reaches every process of the terminal's group; a worker still importing would die with a
KeyboardInterrupt traceback, and a SIGUSR1 (generate's "stop gracefully") would kill it. Workers
therefore start with both signals blocked, inherited across the spawn's fork and exec, and unblock
them once their handlers are in place (`unblock`). In the parent a signal arriving meanwhile waits
and is then handled.
"""

from __future__ import annotations

import signal
from multiprocessing.context import SpawnContext, SpawnProcess

SIGNALS = {signal.SIGINT, signal.SIGUSR1}


class QuietSpawnProcess(SpawnProcess):
    """A spawned process that starts with SIGINT and SIGUSR1 blocked."""

    def start(self) -> None:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class QuietSpawnContext(SpawnContext):
    Process = QuietSpawnProcess


def unblock() -> None:
    """In a worker, once its handlers are set: let the signals through (one that arrived while
    it started is delivered now, to those handlers)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def ignore_sigint() -> None:
    """Worker initializer: a Ctrl-C is the parent's to handle, so workers print no traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    unblock()
