"""A trigger cancelled in the middle of a supervisor call must not break the trigger runner's comms channel.

Regression (seen in CI on Airflow 3.0.6): a triggerer restarted, a watcher read its Variable through
``sync_to_async``, the trigger was cancelled while it waited, and the runner's next request read the cancelled
request's response: ``RuntimeError: Response read out of order!``, and the trigger runner died with every trigger.

The test drives the *installed* ``TriggerCommsDecoder`` (whichever Airflow this venv has) over a socket pair
(:mod:`tests.support.fake_supervisor`), the fake supervisor holding its first answer until the test has cancelled
the caller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import pytest
from airflow.jobs.triggerer_job_runner import TriggerCommsDecoder
from airflow.sdk.execution_time.comms import GetVariable, VariableResult

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.supervisor import settle
from airflow_provider_housecallpro.triggers.state_store import VariableStore, variable_key
from tests.support.fake_supervisor import FakeSupervisor, channel

NEXT = "the_next_request"
STATE = json.dumps({"go_live": "2026-01-01T00:00:00+00:00"})


async def cancel_mid_call_then_ask_again(
    call: Coroutine[Any, Any, Any], decoder: TriggerCommsDecoder, supervisor: FakeSupervisor
) -> Any:
    """Start ``call``; once its request reached the supervisor, cancel it, and only then let the supervisor answer.
    Then do what the trigger runner does next (e.g. ``sync_state_to_supervisor``): a request of its own on the
    event loop, whose answer it returns."""
    caller = asyncio.create_task(call)
    await supervisor.held.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    supervisor.released.set()
    supervisor.variables[NEXT] = "its own answer"
    answer = await decoder.asend(GetVariable(key=NEXT))
    await settle()  # the cancelled caller's round trip has run to its end
    return answer


def test_a_watcher_cancelled_while_loading_its_state_leaves_the_channel_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> Any:
        decoder, supervisor = await channel(monkeypatch, hold="GetVariable")
        supervisor.variables[variable_key("cancelled")] = STATE
        return await cancel_mid_call_then_ask_again(VariableStore("cancelled").load(), decoder, supervisor)

    answer = asyncio.run(scenario())
    assert isinstance(answer, VariableResult)
    assert (answer.key, answer.value) == (NEXT, "its own answer")


def test_a_trigger_cancelled_while_resolving_its_connection_leaves_the_channel_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> tuple[Any, list[dict[str, Any]]]:
        decoder, supervisor = await channel(monkeypatch, hold="GetConnection")
        call = HousecallProHook("housecallpro_cancelled").aget_client_config()
        return await cancel_mid_call_then_ask_again(call, decoder, supervisor), supervisor.requests

    answer, requests = asyncio.run(scenario())
    assert requests[0] == {"type": "GetConnection", "conn_id": "housecallpro_cancelled"}
    assert isinstance(answer, VariableResult)
    assert (answer.key, answer.value) == (NEXT, "its own answer")


def test_the_fake_supervisor_is_faithful_a_load_not_cancelled_reads_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> tuple[Any, list[dict[str, Any]]]:
        _, supervisor = await channel(monkeypatch)
        supervisor.variables[variable_key("steady")] = STATE
        return await VariableStore("steady").load(), supervisor.requests

    value, requests = asyncio.run(scenario())
    assert requests[0] == {"type": "GetVariable", "key": variable_key("steady")}
    assert value == json.loads(STATE)
