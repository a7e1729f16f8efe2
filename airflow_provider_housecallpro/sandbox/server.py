"""Run the sandbox app on uvicorn in a daemon thread (tests, demo, benchmarks), optionally with an SMTP sink."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime
from types import TracebackType

import uvicorn

from .app import create_app
from .sinks import DEFAULT_SMS_ACCOUNT_SID, DEFAULT_SMS_AUTH_TOKEN, SMS_SINK_PREFIX, MessageStore, SmtpSink
from .world import World

#: The phone number the demo and tests send texts from (the sandbox company's, in E.164).
SANDBOX_SMS_FROM = "+15125550100"
SANDBOX_EMAIL_FROM = "Lone Star Home Services <office@lonestarhome.example>"


class SandboxServer:
    """``with SandboxServer() as sb: httpx.get(sb.url + "/company", headers=...)``.

    ``port=0`` binds a free port; the real one is read back from the bound socket. The app always has the
    Twilio-compatible SMS sink (:attr:`sms_base_url`); ``smtp_port`` (``0`` = a free port) also starts the
    SMTP sink (:attr:`smtp_port`). Both record into the store behind ``GET /_sandbox/messages``.
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
        smtp_port: int | None = None,
        sms_account_sid: str = DEFAULT_SMS_ACCOUNT_SID,
        sms_auth_token: str = DEFAULT_SMS_AUTH_TOKEN,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.sms_account_sid = sms_account_sid
        self.sms_auth_token = sms_auth_token
        self.messages = MessageStore()
        self.app = create_app(
            api_key=api_key,
            seed=seed,
            now=now,
            sms_account_sid=sms_account_sid,
            sms_auth_token=sms_auth_token,
            messages=self.messages,
        )
        self._smtp: SmtpSink | None = None if smtp_port is None else SmtpSink(self.messages, host, smtp_port)
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

    @property
    def sms_base_url(self) -> str:
        """Base URL of the Twilio-compatible SMS sink (the ``host`` of an SMS connection)."""
        return f"{self.url}{SMS_SINK_PREFIX}"

    @property
    def smtp_port(self) -> int:
        if self._smtp is None or self._server is None:
            raise RuntimeError("the SMTP sink is not running; pass smtp_port=0 and call start()")
        return self._smtp.port

    def airflow_connections(
        self,
        housecallpro_conn_id: str = "housecallpro_default",
        sms_conn_id: str = "sms_default",
        smtp_conn_id: str = "smtp_default",
    ) -> dict[str, str]:
        """``AIRFLOW_CONN_…`` environment variables (JSON) pointing Airflow at this sandbox and its sinks.

        The Housecall Pro API, the SMS sink (``http``: host = base URL, login = account SID, password = auth
        token, extra ``from_number``) and, when running, the SMTP sink (no TLS, no login).
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        conns: dict[str, dict[str, object]] = {
            housecallpro_conn_id: {"conn_type": "housecallpro", "host": self.url, "password": self.api_key},
            sms_conn_id: {
                "conn_type": "http",
                "host": self.sms_base_url,
                "login": self.sms_account_sid,
                "password": self.sms_auth_token,
                "extra": {"from_number": SANDBOX_SMS_FROM, "timeout": 10},
            },
        }
        if self._smtp is not None:
            conns[smtp_conn_id] = {
                "conn_type": "smtp",
                "host": host,
                "port": self.smtp_port,
                "extra": {
                    "from_email": SANDBOX_EMAIL_FROM,
                    "disable_tls": True,
                    "disable_ssl": True,
                    "timeout": 10,
                    # The SMTP provider 2.x (Airflow 3.0) makes `retry_limit` attempts, so at least 1.
                    "retry_limit": 1,
                },
            }
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()}

    def start(self) -> SandboxServer:
        if self._server is not None:
            return self
        if self._smtp is not None:
            self._smtp.start()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
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
                if self._smtp is not None:
                    self._smtp.stop()
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
        if self._smtp is not None:
            self._smtp.stop()

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
