"""The end-to-end harness's own rules that need no running Airflow: its idempotent requests (pausing, deleting a run)
retry only the metadata DB's 500."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.airflow_stack import AirflowStack

LOCKED = {
    "detail": {
        "reason": "Database error",
        "statement": "INSERT INTO log ...",
        "orig_error": "database is locked",
        "message": "Serious error when handling your request.",
    }
}


def stack_answering(tmp_path: Path, answers: list[tuple[int, dict[str, object]]]) -> tuple[AirflowStack, list[bytes]]:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        status, body = answers[min(len(bodies), len(answers)) - 1]
        return httpx.Response(status, json=body)

    stack = AirflowStack(tmp_path, {"bundle": tmp_path})
    stack._client = httpx.Client(base_url=stack.url, transport=httpx.MockTransport(handler))
    return stack, bodies


def test_a_pause_the_metadata_db_refused_is_sent_again_and_the_error_is_kept(tmp_path: Path) -> None:
    stack, bodies = stack_answering(tmp_path, [(500, LOCKED), (200, {"dag_id": "d", "is_paused": True})])
    with pytest.warns(UserWarning, match="database is locked"):
        stack.pause("d")
    assert [json.loads(b) for b in bodies] == [{"is_paused": True}] * 2
    assert stack.db_errors == ["PATCH /api/v2/dags/d (attempt 1): database is locked"]
    assert "database is locked" in stack.diagnostics()


def test_a_pause_fails_after_the_last_attempt_and_on_any_other_error(tmp_path: Path) -> None:
    stack, bodies = stack_answering(tmp_path, [(500, LOCKED)])
    with pytest.warns(UserWarning), pytest.raises(AssertionError, match="answered 500"):
        stack.unpause("d")
    assert len(bodies) == 3

    stack, bodies = stack_answering(tmp_path, [(404, {"detail": "Dag with id: d was not found"})])
    with pytest.raises(AssertionError, match="answered 404"):
        stack.pause("d")
    assert len(bodies) == 1


def test_a_run_delete_the_metadata_db_refused_is_sent_again_and_a_404_then_means_done(tmp_path: Path) -> None:
    stack, bodies = stack_answering(tmp_path, [(500, LOCKED), (404, {"detail": "not found"})])
    with pytest.warns(UserWarning, match="database is locked"):
        stack.idempotent("DELETE", "/api/v2/dags/d/dagRuns/r", ok=(404,))
    assert len(bodies) == 2
    assert stack.db_errors == ["DELETE /api/v2/dags/d/dagRuns/r (attempt 1): database is locked"]


def test_only_airflows_own_sigterm_traceback_is_no_trigger_failure() -> None:
    from tests.e2e.triggerer_output import trigger_failures

    shutdown = [
        "{base.py:264} ERROR - Exception closing connection <sqlite3.Connection object at 0x7f65>",
        "Traceback (most recent call last):",
        '  File ".../sqlalchemy/pool/base.py", line 262, in _close_connection',
        '  File ".../airflow/utils/cli.py", line 381, in sigint_handler',
        "    sys.exit(0)",
        "SystemExit: 0",
    ]
    assert trigger_failures({"triggerer-2.log": shutdown}) == {}
    failed = ["Traceback (most recent call last):", '  File "jobs.py", line 9, in run', "ValueError: boom"]
    assert trigger_failures({"t.log": failed}) == {"t.log": ["Traceback (most recent call last):"]}
    other_exit = [*shutdown[:-1], "SystemExit: 1"]  # not the clean shutdown
    assert trigger_failures({"t.log": other_exit}) == {"t.log": ["Traceback (most recent call last):"]}
    assert trigger_failures({"t.log": ["Trigger failed: ..."]}) == {"t.log": ["Trigger failed: ..."]}
