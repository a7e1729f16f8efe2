"""A trigger cancelled in the middle of a supervisor call must not break the trigger runner's comms channel.

Regression (seen in CI on Airflow 3.0.6): a triggerer restarted, a watcher read its Variable through
``sync_to_async``, the trigger was cancelled while it waited, and the runner's next request read the cancelled
request's response: ``RuntimeError: Response read out of order!``, and the trigger runner died with every trigger.

The test drives the *installed* ``TriggerCommsDecoder`` (whichever Airflow this venv has) over a socket pair,
installed as the SDK's ``SUPERVISOR_COMMS`` the way the trigger runner installs it. The other end is a small fake
supervisor that answers each request frame with the SDK's own frame and message classes, holding the first answer
until the test has cancelled the caller.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Coroutine
from typing import Any

import msgspec
import pytest
from airflow.jobs.triggerer_job_runner import TriggerCommsDecoder
from airflow.sdk.execution_time import task_runner
from airflow.sdk.execution_time.comms import (
    ConnectionResult,
    GetVariable,
    VariableResult,
    _RequestFrame,
    _ResponseFrame,
)

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.supervisor import settle
from airflow_provider_housecallpro.triggers.state_store import VariableStore, variable_key

NEXT = "the_next_request"
STATE = json.dumps({"go_live": "2026-01-01T00:00:00+00:00"})


class FakeSupervisor:
    """Answers every request frame as the triggerer's supervisor does (the SDK's own frames and messages), except
    the first one of type ``hold``, which waits until the test calls ``release``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: str) -> None:
        self.reader, self.writer, self.hold = reader, writer, hold
        self.requests: list[dict[str, Any]] = []
        self.held = asyncio.Event()
        self.released = asyncio.Event()
        self.decoder = msgspec.msgpack.Decoder(_RequestFrame)
        self.tasks = {asyncio.create_task(self._serve())}

    async def _serve(self) -> None:
        while True:
            length = int.from_bytes(await self.reader.readexactly(4), "big")
            request = self.decoder.decode(await self.reader.readexactly(length))
            body = request.body or {}
            self.requests.append(body)
            if body.get("type") == self.hold and not self.held.is_set():
                self.held.set()
                self.tasks.add(asyncio.create_task(self._answer_when_released(request)))
            else:
                self._answer(request)

    async def _answer_when_released(self, request: _RequestFrame) -> None:
        await self.released.wait()
        self._answer(request)

    def _answer(self, request: _RequestFrame) -> None:
        body = request.body or {}
        answer: Any = None  # e.g. MaskSecret: an empty response frame
        if body.get("type") == "GetVariable":
            answer = VariableResult(key=body["key"], value="its own answer" if body["key"] == NEXT else STATE)
        elif body.get("type") == "GetConnection":
            answer = ConnectionResult(
                conn_id=body["conn_id"],
                conn_type="housecallpro",
                host=None,
                schema=None,
                login=None,
                password="not-a-real-key",
                port=None,
                extra=None,
            )
        frame = _ResponseFrame(id=request.id, body=None if answer is None else answer.model_dump())
        self.writer.write(frame.as_bytes())


async def channel(monkeypatch: pytest.MonkeyPatch, hold: str) -> tuple[TriggerCommsDecoder, FakeSupervisor]:
    """The runner's decoder on one end of a socket pair (as ``TriggerRunner.init_comms`` sets it up), the fake
    supervisor on the other."""
    runner_end, supervisor_end = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=runner_end)
    # ``socket`` (the sync side, unused by a trigger) would default to fd 0: the triggerer's stdin is its socket.
    decoder = TriggerCommsDecoder(async_writer=writer, async_reader=reader, socket=runner_end)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", decoder, raising=False)
    if hasattr(decoder, "start_reader"):  # Airflow >= 3.3: responses are routed by id by a reader task
        await decoder.start_reader()
    return decoder, FakeSupervisor(*await asyncio.open_connection(sock=supervisor_end), hold=hold)


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
    answer = await decoder.asend(GetVariable(key=NEXT))
    await settle()  # the cancelled caller's round trip has run to its end
    return answer


def test_a_watcher_cancelled_while_loading_its_state_leaves_the_channel_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> Any:
        decoder, supervisor = await channel(monkeypatch, hold="GetVariable")
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
        _, supervisor = await channel(monkeypatch, hold="nothing")
        return await VariableStore("steady").load(), supervisor.requests

    value, requests = asyncio.run(scenario())
    assert requests[0] == {"type": "GetVariable", "key": variable_key("steady")}
    assert value == json.loads(STATE)
