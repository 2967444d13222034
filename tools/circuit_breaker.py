"""A circuit breaker per backend: stop sending work to a backend that keeps failing.

closed --(N consecutive failures)--> open --(reset timeout)--> half-open --(success)--> closed
                                       ^------------------(failure)--------------------'
In half-open one trial call at a time is let through; the others are refused as if open.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from citadel import metrics

log = logging.getLogger(__name__)


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def export_state(name: str, state: State) -> None:
    """`on_change` for breakers whose state Prometheus should see (0 closed, 1 half-open, 2 open)."""
    metrics.CIRCUIT_STATE.labels(name).set({State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}[state])


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, State], None] | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._set(State.HALF_OPEN)
        return self._state

    def retry_after(self) -> float:
        """Seconds until this breaker lets a trial call through (0 if it would now)."""
        if self.state is not State.OPEN:
            return 0.0
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go through now. In half-open, claims the single trial slot."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._trial_running = False
        if self._state is not State.CLOSED:
            self._set(State.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_running = False
        if self._state is State.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._set(State.OPEN)

    def release(self) -> None:
        """A call that ended neither in success nor in a backend failure (e.g. cancelled)."""
        self._trial_running = False

    def _set(self, state: State) -> None:
        if state is self._state:
            return
        log.warning("circuit %s: %s -> %s", self.name, self._state.value, state.value)
        self._state = state
        if self._on_change:
            self._on_change(self.name, state)
