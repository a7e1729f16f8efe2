"""Reading an asset's recent events when the API server cannot list them (``assets._recent``).

Airflow 3.0's execution API answers 500 to ``inlet_events[asset]`` while one of the asset's events has created a
run that has not started (its response model requires the run's ``start_date``; seen in the e2e kill-and-pause
scenario when the 15-minute sweep run of ``hcp_watch_completions`` met a queued asset-triggered run). The run
then processes its triggering events and leaves the rest to the next run; any other error still fails the task.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
from airflow.sdk.execution_time.comms import ErrorResponse

from airflow_provider_housecallpro.assets import _recent

ASSET = Asset(name="housecallpro_job_completed", uri="housecallpro://jobs/completed")
AFTER = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)


class Inlets:
    """``context["inlet_events"]`` as the Task SDK gives it: indexing by the asset reads from the API server."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def __getitem__(self, asset: Any) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def server_error(status: int) -> AirflowRuntimeError:
    detail = {"status_code": status, "message": "Server error", "detail": {"message": "Internal server error"}}
    return AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail=detail))


def test_a_500_listing_the_asset_leaves_the_recent_events_to_the_next_run(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_housecallpro.assets"):
        assert _recent({"inlet_events": Inlets(server_error(500))}, ASSET, AFTER) == []
    assert "could not list the recent events of asset 'housecallpro_job_completed'" in caplog.text
    assert "the next run the rest" in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        server_error(503),
        AirflowRuntimeError(ErrorResponse(error=ErrorType.GENERIC_ERROR, detail={"status_code": 500})),
        RuntimeError("500"),
    ],
    ids=["another status", "not an API-server error", "not the Task SDK's error"],
)
def test_any_other_error_still_fails_the_task(error: BaseException) -> None:
    with pytest.raises(type(error)):
        _recent({"inlet_events": Inlets(error)}, ASSET, AFTER)


def test_a_readable_asset_gives_its_events_after_the_given_time() -> None:
    events = [SimpleNamespace(timestamp=AFTER + timedelta(seconds=s)) for s in (-1, 0, 1, 2)]
    assert _recent({"inlet_events": Inlets(events)}, ASSET, AFTER) == events[2:]
    assert _recent({}, ASSET, AFTER) == []  # the task does not have the asset as an inlet
