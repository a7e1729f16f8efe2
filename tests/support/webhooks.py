"""A webhook receiver for tests: the real receiver app (signature check and all) on uvicorn over loopback, handing
what it accepts to an in-memory sink instead of Airflow."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import uvicorn

from airflow_provider_housecallpro.webhooks import inbox
from airflow_provider_housecallpro.webhooks.deliveries import Delivery
from airflow_provider_housecallpro.webhooks.receiver import create_receiver_app

if TYPE_CHECKING:
    from tests.support.fake_supervisor import FakeSupervisor

SECRET = "whsec-7f3a9c2e-do-not-log"
CONN = "housecallpro"


def oracle_signature(secret: str, stamp: str, body: bytes) -> str:
    """Housecall Pro's documented scheme, written out independently of the module under test."""
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


class RecordingSink:
    """Accepts deliveries for ``CONN`` (secret ``SECRET``); ``fail_next`` answers that many with an error first."""

    def __init__(self, fail_next: int = 0) -> None:
        self.secrets = {CONN: SECRET}
        self.delivered: list[tuple[str, Delivery]] = []
        self.fail_next = fail_next
        self.failed = 0
        self.changed = threading.Condition()

    async def secret(self, conn_id: str) -> str | None:
        return self.secrets.get(conn_id)

    async def deliver(self, conn_id: str, delivery: Delivery) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            raise ConnectionError("metadata DB down")
        with self.changed:
            self.delivered.append((conn_id, delivery))
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Delivery]:
        """The deliveries once there are at least ``count`` (a deadline, not a sleep)."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.delivered) >= count, timeout)
            return [d for _, d in self.delivered]


class InboxRecorder:
    """What the API-server plugin does with a job delivery (append it to the inbox Variable), into the fake
    supervisor's Variables instead of the metadata DB."""

    def __init__(self, supervisor: FakeSupervisor, conn_id: str) -> None:
        self.supervisor, self.conn_id = supervisor, conn_id
        self.lock = threading.Lock()
        self.accepted: list[str] = []

    async def secret(self, conn_id: str) -> str | None:
        return SECRET if conn_id == self.conn_id else None

    async def deliver(self, conn_id: str, delivery: Delivery) -> None:
        entry = delivery.job_entry()
        with self.lock:
            self.accepted.append(delivery.event)
            if entry is None:
                return
            key = inbox.variable_key(conn_id)
            current = self.supervisor.variables.get(key)
            value = inbox.append(json.loads(current) if current else None, [entry], time.time())
            self.supervisor.variables[key] = json.dumps(value)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("receiver did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def receiver(sink: RecordingSink) -> Iterator[str]:
    """The receiver app for ``sink``; yields the URL Housecall Pro (the sandbox) posts to."""
    with serve(create_receiver_app(sink)) as url:
        yield f"{url}/{CONN}"
