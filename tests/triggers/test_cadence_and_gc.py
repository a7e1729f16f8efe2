"""An account's polls stay on their cadence however late each one starts; the triggerer's heap is frozen once."""

from __future__ import annotations

import gc
import importlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_housecallpro import get_provider_info
from airflow_provider_housecallpro.triggers import process_gc
from airflow_provider_housecallpro.triggers.shared_poller import _on_cadence

INTERVAL, TICK = 10.0, 10.0


def test_a_first_poll_sets_the_phase() -> None:
    assert _on_cadence(float("-inf"), INTERVAL, 123.4, TICK) == 123.4


@given(st.lists(st.floats(min_value=0.0, max_value=TICK / 2 * 0.99), min_size=5, max_size=60))
def test_late_starts_never_move_the_phase(lateness: list[float]) -> None:
    """Each poll starts up to half a tick late (a taken slot, a busy loop, a GC pause): the n-th poll still
    counts at phase + n intervals, so the account makes exactly one request per interval, none lost to drift
    (before: each late start pushed every later poll back)."""
    phase = 1000.0
    last = _on_cadence(float("-inf"), INTERVAL, phase, TICK)
    for n, late in enumerate(lateness, start=1):
        due = last + INTERVAL
        last = _on_cadence(last, INTERVAL, due + late, TICK)
        assert last == pytest.approx(phase + n * INTERVAL)


def test_an_early_poll_within_half_a_tick_keeps_the_phase() -> None:
    """A subscriber polled a little early with others of its account (due within half a tick) keeps its phase."""
    assert _on_cadence(100.0, INTERVAL, 100.0 + INTERVAL - TICK / 4, TICK) == 100.0 + INTERVAL


def test_a_poller_far_behind_skips_the_missed_polls_instead_of_a_burst() -> None:
    """More than two intervals behind (the loop was blocked, the machine slept): the phase restarts now, so the
    next poll is one interval later, not a catch-up burst of the missed ones."""
    assert _on_cadence(100.0, INTERVAL, 100.0 + 5.5 * INTERVAL, TICK) == 100.0 + 5.5 * INTERVAL
    # Half a tick or more late, less than two intervals: it counts as the next slot's poll (one skipped), the
    # phase kept.
    assert _on_cadence(100.0, INTERVAL, 100.0 + INTERVAL + TICK / 2, TICK) == 100.0 + 2 * INTERVAL
    assert _on_cadence(100.0, INTERVAL, 100.0 + 1.6 * INTERVAL, TICK) == 100.0 + 2 * INTERVAL


@pytest.fixture
def fresh_gc_module():
    """process_gc as in a new process (not frozen yet); whatever it froze is unfrozen after the test."""
    module = importlib.reload(process_gc)
    yield module
    gc.unfreeze()
    module._done = True  # as it was: this process's pollers already had their turn


def test_the_first_call_freezes_the_heap_once(fresh_gc_module) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    assert fresh_gc_module.freeze_once() is True
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # the imports (Airflow, httpx, pydantic, ...): out of every later full collection
    made_since = [[i] for i in range(5_000)]  # tracked containers a second freeze would take in
    assert fresh_gc_module.freeze_once() is False
    # Not frozen again: the count did not grow by them (it may shrink: frozen objects are still freed by refcount).
    assert gc.get_freeze_count() < frozen + len(made_since)


def test_the_option_turns_it_off(fresh_gc_module, monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    monkeypatch.setenv("AIRFLOW__HOUSECALLPRO__TRIGGERER_GC_FREEZE", "False")
    assert fresh_gc_module.enabled() is False
    assert fresh_gc_module.freeze_once() is False
    assert gc.get_freeze_count() == 0


def test_the_option_is_declared_in_the_provider_info() -> None:
    option = get_provider_info()["config"]["housecallpro"]["options"]["triggerer_gc_freeze"]
    assert option["type"] == "boolean" and option["default"] == "True"
