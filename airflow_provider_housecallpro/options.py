"""Validation of every option a DAG author passes, in one place, run when the DAG is parsed.

Each check names the parameter and the rule, so a typo or an out-of-range value fails the DAG import with a
readable message instead of a ``TypeError`` in the triggerer months later.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow_provider_housecallpro.events.detector import DetectorSettings, EventType
from airflow_provider_housecallpro.events.filters import JobFilter

# client_options: name -> (kind, minimum, maximum)
CLIENT_OPTIONS: dict[str, tuple[type, float, float]] = {
    "timeout": (float, 0.001, 600),
    "connect_timeout": (float, 0.001, 600),
    "max_retries": (int, 0, 20),
    "backoff_base": (float, 0, 60),
    "backoff_max": (float, 0, 3600),
    "retry_after_max": (float, 0, 3600),
}
_DURATIONS = ("lookback", "overlap", "settle", "retention", "reconcile_interval")
_COUNTS = ("page_size", "first_page_size", "max_tracked")
DETECTOR_OPTIONS = (*_DURATIONS, *_COUNTS)


def _number(name: str, value: Any, kind: type, low: float, high: float) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if kind is int and not (isinstance(value, int) or float(value).is_integer()):
        raise ValueError(f"{name} must be a whole number; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}; got {value!r}")
    return int(value) if kind is int else float(value)


def client_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """HTTP client overrides: known keys only, numbers in range."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"client_options must be a dict; got {options!r}")
    unknown = sorted(set(options) - set(CLIENT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown client_options {unknown}; known: {', '.join(CLIENT_OPTIONS)}")
    return {
        key: _number(f"client_options[{key!r}]", value, *CLIENT_OPTIONS[key])
        for key, value in options.items()
        if value is not None
    }


def detector_settings(
    kind: EventType, filters: Mapping[str, Any] | None, options: Mapping[str, Any] | None
) -> DetectorSettings:
    """Detector settings from JSON primitives (durations in seconds); bad options name the option."""
    options = options or {}
    if not isinstance(options, Mapping):
        raise ValueError(f"detector_options must be a dict; got {options!r}")
    unknown = sorted(set(options) - set(DETECTOR_OPTIONS))
    if unknown:
        raise ValueError(f"unknown detector_options {unknown}; known: {', '.join(DETECTOR_OPTIONS)}")
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = f"detector_options[{key!r}]"
        if key in _DURATIONS:
            low = 0 if key in ("lookback", "overlap", "settle") else 1
            values[key] = timedelta(seconds=_number(name, value, float, low, 10 * 365 * 86_400))
        else:
            high = 200 if key in ("page_size", "first_page_size") else 10_000_000
            values[key] = _number(name, value, int, 1, high)
    return DetectorSettings(kind=kind, filter=JobFilter.parse(filters), **values)


def poke_interval(value: Any) -> float:
    return float(_number("poke_interval", value, float, 0.001, 7 * 86_400))


def max_events(value: Any) -> int | None:
    if value is None:
        return None
    return int(_number("max_events", value, int, 1, 100_000))


def timeout(value: Any) -> float:
    return float(_number("timeout", value, float, 0, 10 * 365 * 86_400))
