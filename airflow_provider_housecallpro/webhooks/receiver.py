"""The webhook receiver: an ASGI app with one route, ``POST /{conn_id}``, wherever it is mounted.

Order of checks, each refusal a 4xx that records nothing and never echoes the body or the secret:

1. the body is read up to ``max_body`` bytes (413 beyond; a ``Content-Length`` over the cap is refused unread);
2. no signature headers and a JSON object without ``event``: Housecall Pro's URL check → 200, nothing recorded;
3. the connection's webhook secret (404 when the connection has none: not configured for webhooks);
4. the signature over the raw body and the timestamp window (401);
5. the body is a JSON object with an event name (400);
6. the recorder takes it (200); a recorder failure is a 503, so Housecall Pro retries.

Logs at info name the event and the connection only (no customer data, no secret).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from airflow_provider_housecallpro.webhooks.deliveries import (
    MAX_BODY,
    Delivery,
    DeliveryError,
    is_validation,
    parse,
    parse_json,
)
from airflow_provider_housecallpro.webhooks.signature import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify,
)

log = logging.getLogger(__name__)

CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")


class Recorder(Protocol):
    """Where verified deliveries go (inside Airflow: :class:`.in_airflow.AirflowRecorder`)."""

    async def secret(self, conn_id: str) -> str | None:
        """The connection's webhook secret; None when it has none (or does not exist)."""
        ...

    async def deliver(self, conn_id: str, delivery: Delivery) -> None: ...


class _TooLarge(Exception):
    pass


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(status: int, reason: str, conn_id: str) -> JSONResponse:
    log.warning("Housecall Pro webhook for connection %r refused (%d): %s", conn_id, status, reason)
    return JSONResponse({"error": reason}, status_code=status)


def create_receiver_app(
    recorder: Recorder,
    *,
    max_body: int = MAX_BODY,
    tolerance: float = DEFAULT_TOLERANCE,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        conn_id = request.path_params["conn_id"]
        if not CONN_ID.fullmatch(conn_id):
            return _refuse(404, "unknown connection", "?")
        try:
            body = await _read(request, max_body)
        except _TooLarge:
            return _refuse(413, f"body larger than {max_body} bytes", conn_id)
        stamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if stamp is None and signature is None and len(body) <= 1024:
            try:
                if is_validation(parse_json(body)):
                    log.info("Housecall Pro webhook URL check for connection %r answered", conn_id)
                    return JSONResponse({"status": "ok"})
            except DeliveryError:
                pass
        secret = await recorder.secret(conn_id)
        if not secret:
            return _refuse(404, "connection not configured for webhooks (no webhook secret)", conn_id)
        try:
            verify(secret, stamp, signature, body, now=clock(), tolerance=tolerance)
            delivery = parse(body, clock())
        except SignatureError as exc:
            return _refuse(401, str(exc), conn_id)
        except DeliveryError as exc:
            return _refuse(400, str(exc), conn_id)
        try:
            await recorder.deliver(conn_id, delivery)
        except Exception as exc:
            log.error(
                "Housecall Pro webhook %s for connection %r not recorded (%s); Housecall Pro will retry",
                delivery.event,
                conn_id,
                type(exc).__name__,
            )
            return JSONResponse({"error": "not recorded; retry"}, status_code=503)
        log.info("Housecall Pro webhook %s (%s) for connection %r accepted", delivery.event, delivery.id, conn_id)
        return JSONResponse({"status": "accepted", "id": delivery.id})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes: list[Any] = [
        Route("/", health, methods=["GET"]),
        Route("/{conn_id}", receive, methods=["POST"]),
    ]
    return Starlette(routes=routes)
