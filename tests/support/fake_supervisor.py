"""The triggerer's comms channel, for real: the installed ``TriggerCommsDecoder`` on one end of a socket pair, installed
as the SDK's ``SUPERVISOR_COMMS`` the way ``TriggerRunner.init_comms`` installs it, and on the other end a small fake
supervisor that answers request frames with the SDK's own frame and message classes (Variables kept in a dict).

Airflow's code runs unmodified on the trigger side (``Variable.get`` in a worker thread, ``async_to_sync``, the
decoder's lock or reader task); only the supervisor process is replaced.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import msgspec
import pytest
from airflow.jobs.triggerer_job_runner import TriggerCommsDecoder
from airflow.sdk.exceptions import ErrorType
from airflow.sdk.execution_time import task_runner
from airflow.sdk.execution_time.comms import (
    ConnectionResult,
    ErrorResponse,
    VariableResult,
    _RequestFrame,
    _ResponseFrame,
)


class FakeSupervisor:
    """Answers every request frame as the triggerer's supervisor does, except the first one of type ``hold``, which
    waits until ``released`` is set. ``requests`` lists the bodies received, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: str | None = None) -> None:
        self.reader, self.writer, self.hold = reader, writer, hold
        self.variables: dict[str, str] = {}
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
        kind = body.get("type")
        answer: Any = None  # PutVariable, DeleteVariable, MaskSecret: an empty response frame
        if kind == "GetVariable":
            value = self.variables.get(body["key"])
            answer = (
                ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND, detail={"key": body["key"]})
                if value is None
                else VariableResult(key=body["key"], value=value)
            )
        elif kind == "PutVariable":
            self.variables[body["key"]] = body["value"]
        elif kind == "DeleteVariable":
            self.variables.pop(body["key"], None)
        elif kind == "GetConnection":
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


async def channel(
    monkeypatch: pytest.MonkeyPatch, hold: str | None = None
) -> tuple[TriggerCommsDecoder, FakeSupervisor]:
    """The trigger runner's decoder, installed as ``SUPERVISOR_COMMS``, wired to a fresh fake supervisor."""
    runner_end, supervisor_end = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=runner_end)
    # ``socket`` (the sync side, unused by a trigger) would default to fd 0: the triggerer's stdin is its socket.
    decoder = TriggerCommsDecoder(async_writer=writer, async_reader=reader, socket=runner_end)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", decoder, raising=False)
    if hasattr(decoder, "start_reader"):  # Airflow >= 3.3: responses are routed by id by a reader task
        await decoder.start_reader()
    return decoder, FakeSupervisor(*await asyncio.open_connection(sock=supervisor_end), hold=hold)


class DictAssetStore:
    """What Airflow 3.3's triggerer injects as ``asset_state_store`` (aget/aset), kept in a dict as JSON (Airflow's
    object, so faking it fakes none of ours)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)
        self.writes += 1
