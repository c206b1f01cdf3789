"""Pause, resume and "run one evaluation interval" for a training run in progress (TensorFlow Playground's
play / pause / step), as `TrainSettings.control`.

The loop asks the gate before every step (`wait`): while paused it blocks there — between two optimizer steps,
so nothing is half done, and the paused time is left out of the run's clock and its time budget. `step()`
lets the run go on to its next evaluation and pause again right after it (`evaluated`), so a class can
watch the loss and the sample change one evaluation at a time. Every method is thread-safe: the app's worker
calls them from the thread that reads its stdin.
"""

from __future__ import annotations

import threading
import time

POLL_SECONDS = 0.2  # how often a paused run looks at its stop flag


class PauseGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stepping = False  # running to the next evaluation, then pausing

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    def pause(self) -> None:
        with self._cond:
            self._paused, self._stepping = True, False
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused, self._stepping = False, False
            self._cond.notify_all()

    def step(self) -> None:
        """Run to the next evaluation, then pause (also from a running, not paused, run)."""
        with self._cond:
            self._paused, self._stepping = False, True
            self._cond.notify_all()

    def send(self, command: str) -> None:
        """A command by name, as the app's worker reads them from its stdin: pause | resume | step."""
        if command not in ("pause", "resume", "step"):
            raise ValueError(f"unknown run command {command!r}")
        getattr(self, command)()

    def evaluated(self) -> None:
        """Called by the loop after each evaluation: a requested step ends here."""
        with self._cond:
            if self._stepping:
                self._paused, self._stepping = True, False

    def wait(self, stop=None) -> float:
        """Block while paused (until resumed, stepped, or `stop` — an Event-like — is set); seconds waited."""
        started = time.perf_counter()
        with self._cond:
            while self._paused and not (stop is not None and stop.is_set()):
                self._cond.wait(POLL_SECONDS)
        return time.perf_counter() - started
