"""After every scenario on the shared Airflow: no secret in any file it wrote, no trigger ever failed.

This runs last on the stack (``SCENARIOS`` in conftest.py). It searches every triggerer's output (each life of
each triggerer, through the kills and restarts) for a trigger that failed or a trigger runner that died; then it
stops every component, so their output is flushed and complete, and searches everything under AIRFLOW_HOME — task
logs (worker and triggerer parts), component output, the metadata DB file (XComs, rendered fields, trigger kwargs,
the log table), config — for the Housecall Pro API key, the webhook signing secret and the SMS sink's auth token.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_KEY
from tests.e2e.conftest import SCENARIOS, SharedAirflow
from tests.e2e.test_webhooks import SECRET as WEBHOOK_SECRET
from tests.e2e.triggerer_output import trigger_failures, triggerer_output

pytestmark = pytest.mark.e2e


def test_no_secret_and_no_trigger_failure_anywhere_after_every_scenario(e2e: SharedAirflow) -> None:
    if not e2e.ran:
        pytest.skip(f"no scenario ran on this stack in this session (selected: none of {SCENARIOS[:-1]})")
    stack = e2e.stack
    sms_token = json.loads(stack.env["AIRFLOW_CONN_SMS_DEFAULT"])["password"]
    # Trigger failures while the triggerers ran (their log lines are written as they happen). Not after the stop:
    # Airflow 3.0.6's triggerer answers SIGTERM with a SystemExit that can land inside SQLAlchemy's pool, which
    # then logs "Exception closing connection" with a traceback: Airflow's shutdown, not a trigger of ours.
    output = triggerer_output(stack)
    assert len(output) >= 1 + len(stack.killed), sorted(output)  # the first life, and one per restart
    assert trigger_failures(output) == {}
    stack.stop()
    assert stack.stragglers() == []

    clear = stack.lines_containing(API_KEY)
    # The LocalExecutor of Airflow 3.3 also echoes task log lines to the scheduler's stdout, unmasked: the masking
    # probe's deliberate prints show there in clear. Nothing else may contain the key.
    echoed = clear.pop("component-output/scheduler.log", [])
    assert clear == {}, clear
    assert all("probe " in line for line in echoed), echoed
    assert sms_token and stack.lines_containing(sms_token) == {}
    assert stack.lines_containing(WEBHOOK_SECRET) == {}
