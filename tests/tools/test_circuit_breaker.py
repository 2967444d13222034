"""The breaker's state machine, on a clock the test controls."""

from __future__ import annotations

from citadel.tools.circuit_breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("b", failure_threshold=3, reset_timeout=10.0, clock=clock)


def test_opens_after_consecutive_failures_only() -> None:
    breaker = make(Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is State.CLOSED
    breaker.record_failure()
    assert breaker.state is State.OPEN
    assert not breaker.allow()


def test_half_open_lets_one_trial_through_then_closes_on_success() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    assert breaker.retry_after() == 10.0
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow(), "only one trial at a time"
    breaker.record_success()
    assert breaker.state is State.CLOSED
    assert breaker.allow()


def test_failed_trial_reopens_for_a_full_timeout() -> None:
    clock = Clock()
    changes: list[State] = []
    breaker = CircuitBreaker(
        "b", failure_threshold=1, reset_timeout=5.0, clock=clock, on_change=lambda _, s: changes.append(s)
    )
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is State.OPEN
    assert breaker.retry_after() == 5.0
    assert changes == [State.OPEN, State.HALF_OPEN, State.OPEN]


def test_released_trial_frees_the_slot() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()
