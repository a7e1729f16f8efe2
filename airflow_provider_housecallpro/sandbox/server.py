"""Run the sandbox app on uvicorn in a daemon thread (tests, demo, benchmarks, ``housecallpro sandbox``)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType

import uvicorn
from fastapi import APIRouter

from .app import create_app
from .world import World


class SandboxServer:
    """``with SandboxServer() as sb: httpx.get(sb.url + "/company", headers=...)``.

    ``port=0`` binds a free port; the real one is read back from the bound socket. ``routers`` and ``on_reset``
    extend the app (see :func:`~.app.create_app`).
    """

    def __init__(
        self,
        api_key: str = "sandbox-key",
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        startup_timeout: float = 15.0,
        *,
        routers: Sequence[APIRouter] = (),
        on_reset: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.app = create_app(api_key=api_key, seed=seed, now=now, routers=routers, on_reset=on_reset)
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def world(self) -> World:
        """Direct access to the in-memory account (debugging only; prefer the admin API)."""
        world: World = self.app.state.world
        return world

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("SandboxServer is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def airflow_connections(self, housecallpro_conn_id: str = "housecallpro_default") -> dict[str, str]:
        """The ``AIRFLOW_CONN_…`` environment variable (JSON) pointing Airflow at this sandbox."""
        conn = {"conn_type": "housecallpro", "host": self.url, "password": self.api_key}
        return {f"AIRFLOW_CONN_{housecallpro_conn_id.upper()}": json.dumps(conn)}

    def start(self) -> SandboxServer:
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", date_header=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"hcp-sandbox-{self.port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._server = self._thread = None
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"sandbox failed to start on {self.host}:{self.port}")
            time.sleep(0.01)
        self._socket = sock
        return self

    def stop(self, timeout: float = 10.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():  # e.g. a long "delay" fault still sleeping
            server.force_exit = True
            thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def wait(self) -> None:
        """Block until the server thread ends (used by the CLI)."""
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
