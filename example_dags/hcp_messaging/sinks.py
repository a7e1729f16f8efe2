"""Local message sinks for the demo and the tests: a Twilio-compatible SMS endpoint and a minimal SMTP server.

Not part of the provider: :class:`SandboxWithSinks` is the provider's Housecall Pro sandbox with these sinks
mounted on it. Nothing leaves the machine. Both record what they receive in a :class:`MessageStore`, read back
over HTTP (``GET {sandbox}/_sandbox/messages`` → ``{"sms": [...], "email": [...]}``, cleared by
``DELETE /_sandbox/messages`` and ``POST /_sandbox/reset``) or with :class:`SinkAdmin`.

- **SMS**: ``POST {sandbox}/_sandbox/sinks/sms/2010-04-01/Accounts/{AccountSid}/Messages.json`` with the form
  fields ``To``, ``From``, ``Body`` and HTTP basic auth ``AccountSid:AuthToken`` — the request Twilio's
  Messages API takes — answered like Twilio: 201 with a message resource, 401 for wrong credentials, 400 with
  Twilio's error codes for a missing or malformed field. The auth token is checked, never stored.
- **Email**: an SMTP server on loopback (asyncio, in its own thread) speaking what :mod:`smtplib` and
  Airflow's ``SmtpHook`` use: EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, VRFY, HELP, QUIT. No TLS, no
  AUTH: the ``smtp`` connection pointing at it sets ``disable_tls`` and ``disable_ssl`` and has no login.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email
import email.policy
import hmac
import itertools
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from airflow_provider_housecallpro.sandbox.admin import SandboxAdmin
from airflow_provider_housecallpro.sandbox.faults import ADMIN_PREFIX
from airflow_provider_housecallpro.sandbox.server import SandboxServer

JSON = dict[str, Any]
logger = logging.getLogger(__name__)

MESSAGES_PATH = f"{ADMIN_PREFIX}/messages"  # SinkAdmin reads it as "/messages" under the admin prefix
SMS_SINK_PREFIX = f"{ADMIN_PREFIX}/sinks/sms"
TWILIO_API_VERSION = "2010-04-01"
DEFAULT_SMS_ACCOUNT_SID = "AC00000000000000000000000000sandbox"
DEFAULT_SMS_AUTH_TOKEN = "sandbox-sms-token"
MAX_SMS_BODY = 1600  # Twilio's limit for one (concatenated) message
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MessageStore:
    """What the sinks received, in arrival order (thread-safe; bounded)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._sms: list[JSON] = []
        self._email: list[JSON] = []
        self._maxlen = maxlen
        self._seq = itertools.count(1)

    def _add(self, target: list[JSON], record: JSON) -> JSON:
        with self._lock:
            record = {"seq": next(self._seq), **record}
            target.append(record)
            del target[: max(0, len(target) - self._maxlen)]
            return dict(record)

    def add_sms(self, record: JSON) -> JSON:
        return self._add(self._sms, record)

    def add_email(self, record: JSON) -> JSON:
        return self._add(self._email, record)

    def snapshot(self) -> JSON:
        with self._lock:
            return {"sms": [dict(m) for m in self._sms], "email": [dict(m) for m in self._email]}

    def clear(self) -> None:
        with self._lock:
            self._sms.clear()
            self._email.clear()


def messages_router(store: MessageStore) -> APIRouter:
    """``GET``/``DELETE {sandbox}/_sandbox/messages``: what the sinks received, and forgetting it."""
    router = APIRouter()

    @router.get(MESSAGES_PATH)
    async def list_messages() -> JSONResponse:
        return JSONResponse(store.snapshot())

    @router.delete(MESSAGES_PATH)
    async def clear_messages() -> JSONResponse:
        store.clear()
        return JSONResponse(store.snapshot())

    return router


# -- SMS ------------------------------------------------------------------------------------------
def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return JSONResponse({**body, "status": status}, status_code=status)


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def sms_segments(body: str) -> int:
    """How many SMS segments a body takes (GSM-7: 160/153 characters, otherwise UCS-2: 70/67)."""
    single, multi = (160, 153) if set(body) <= _GSM7 else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


def sms_router(store: MessageStore, account_sid: str, auth_token: str) -> APIRouter:
    """Twilio's ``Messages.json`` create endpoint, recording each accepted message in ``store``."""
    router = APIRouter(prefix=SMS_SINK_PREFIX)

    @router.post(f"/{TWILIO_API_VERSION}/Accounts/{{sid}}/Messages.json")
    async def create_message(sid: str, request: Request) -> JSONResponse:
        credentials = _basic_auth(request.headers.get("authorization"))
        if (
            credentials is None
            or not hmac.compare_digest(credentials[0].encode(), account_sid.encode())
            or not hmac.compare_digest(credentials[1].encode(), auth_token.encode())
            or sid != account_sid
        ):
            return _twilio_error(401, 20003, "Authenticate")
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        to, sender, body = form.get("To", "").strip(), form.get("From", "").strip(), form.get("Body", "")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender and not form.get("MessagingServiceSid"):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body.strip():
            return _twilio_error(400, 21602, "Message body is required.")
        if len(body) > MAX_SMS_BODY:
            return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        message_sid = f"SM{uuid.uuid4().hex}"
        created = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/{TWILIO_API_VERSION}/Accounts/{sid}/Messages/{message_sid}.json"
        store.add_sms({"sid": message_sid, "to": to, "from": sender, "body": body, "received_at": _now()})
        resource = {
            "account_sid": sid,
            "api_version": TWILIO_API_VERSION,
            "body": body,
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(sms_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        return JSONResponse(resource, status_code=201)

    return router


# -- email ----------------------------------------------------------------------------------------
class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "table", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head", "title"):
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(re.sub(r"[ \t\r\n\f]+", " ", data))


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: ``<br>`` is a line break, block elements separate paragraphs."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse_email(envelope_from: str, recipients: list[str], data: bytes) -> JSON:
    """A received message as the sink records it: envelope, headers, subject, text and HTML bodies."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    plain: str | None = None
    html: str | None = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        try:
            content = part.get_content()  # type: ignore[attr-defined]
        except (LookupError, ValueError):
            continue
        if kind == "text/plain" and plain is None and isinstance(content, str):
            plain = content.strip()
        elif kind == "text/html" and html is None and isinstance(content, str):
            html = content
    return {
        "envelope_from": envelope_from,
        "to": list(recipients),
        "from": str(message.get("From", "")),
        "header_to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "text": plain if plain is not None else html_to_text(html or ""),
        "html": html,
        "size": len(data),
        "received_at": _now(),
    }


_PATH = re.compile(r"^\s*<([^<>]*)>\s*(.*)$")


class _SmtpSession:
    """One SMTP conversation (RFC 5321 subset)."""

    def __init__(self, sink: SmtpSink, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sink, self.reader, self.writer = sink, reader, writer
        self.greeted = False
        self.sender: str | None = None
        self.recipients: list[str] = []

    def reply(self, *lines: str) -> None:
        """``reply("250 OK")`` or a multi-line reply, each line as ``"250 text"`` (continuations added)."""
        out = [f"{line[:3]}{'-' if i < len(lines) - 1 else ' '}{line[4:]}" for i, line in enumerate(lines)]
        self.writer.write(("\r\n".join(out) + "\r\n").encode("utf-8"))

    def reset(self) -> None:
        self.sender, self.recipients = None, []

    async def readline(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), timeout=self.sink.idle_timeout)

    async def run(self) -> None:
        self.reply(f"220 {self.sink.hostname} Housecall Pro sandbox SMTP sink ready")
        while True:
            await self.writer.drain()
            try:
                raw = await self.readline()
            except (TimeoutError, ValueError, asyncio.LimitOverrunError):  # idle too long, or a line too long
                self.reply("421 4.4.2 Closing connection")
                return
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            handler = self.COMMANDS.get(verb.upper())
            if handler is None:
                self.reply("500 5.5.2 Command unrecognized")
            elif await handler(self, arg.strip()) is False:
                await self.writer.drain()
                return

    async def helo(self, arg: str) -> None:
        if not arg:
            self.reply("501 5.5.4 Syntax: HELO hostname")
            return
        self.greeted = True
        self.reset()
        self.reply(f"250 {self.sink.hostname}")

    async def ehlo(self, arg: str) -> None:
        if not arg:
            self.reply("501 5.5.4 Syntax: EHLO hostname")
            return
        self.greeted = True
        self.reset()
        self.reply(
            f"250 {self.sink.hostname} Hello {arg}",
            f"250 SIZE {self.sink.max_message_bytes}",
            "250 8BITMIME",
            "250 SMTPUTF8",
            "250 HELP",
        )

    async def mail(self, arg: str) -> None:
        if not self.greeted:
            self.reply("503 5.5.1 Send HELO/EHLO first")
            return
        if self.sender is not None:
            self.reply("503 5.5.1 Sender already specified")
            return
        head, _, rest = arg.partition(":")
        match = _PATH.match(rest) if head.strip().upper() == "FROM" else None
        if match is None:
            self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        self.sender = match.group(1)
        self.reply("250 2.1.0 OK")

    async def rcpt(self, arg: str) -> None:
        if self.sender is None:
            self.reply("503 5.5.1 Need MAIL before RCPT")
            return
        head, _, rest = arg.partition(":")
        match = _PATH.match(rest) if head.strip().upper() == "TO" else None
        if match is None or not match.group(1):
            self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        self.recipients.append(match.group(1))
        self.reply("250 2.1.5 OK")

    async def data(self, arg: str) -> bool | None:
        if arg:
            self.reply("501 5.5.4 Syntax: DATA")
            return None
        if not self.recipients or self.sender is None:
            self.reply("503 5.5.1 Need RCPT before DATA")
            return None
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        await self.writer.drain()
        chunks: list[bytes] = []
        size, too_big = 0, False
        while True:
            try:
                raw = await self.readline()
            except (TimeoutError, ValueError, asyncio.LimitOverrunError):
                self.reply("421 4.4.2 Closing connection")
                return False
            if not raw:
                return False  # the client went away mid-message: nothing is recorded
            if raw in (b".\r\n", b".\n"):
                break
            if raw.startswith(b"."):
                raw = raw[1:]  # undo dot-stuffing
            size += len(raw)
            if size > self.sink.max_message_bytes:
                too_big = True
                chunks.clear()
            elif not too_big:
                chunks.append(raw)
        sender, recipients = self.sender, self.recipients
        self.reset()
        if too_big:
            self.reply("552 5.3.4 Message size exceeds fixed limit")
            return None
        try:
            record = self.sink.store.add_email(parse_email(sender, recipients, b"".join(chunks)))
        except Exception:  # a message we cannot parse is still answered, like a real server would
            logger.exception("SMTP sink could not parse a message")
            self.reply("554 5.6.0 Message could not be parsed")
            return None
        self.reply(f"250 2.0.0 OK: queued as {record['seq']}")
        return None

    async def rset(self, arg: str) -> None:
        self.reset()
        self.reply("250 2.0.0 OK")

    async def noop(self, arg: str) -> None:
        self.reply("250 2.0.0 OK")

    async def vrfy(self, arg: str) -> None:
        self.reply("252 2.1.5 Cannot VRFY user, but will accept message")

    async def help(self, arg: str) -> None:
        self.reply("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")

    async def starttls(self, arg: str) -> None:
        self.reply("454 4.7.0 TLS not available (set disable_tls in the smtp connection)")

    async def auth(self, arg: str) -> None:
        self.reply("502 5.5.1 AUTH not supported (leave the smtp connection's login empty)")

    async def quit(self, arg: str) -> bool:
        self.reply("221 2.0.0 Bye")
        return False

    COMMANDS: dict[str, Callable[[_SmtpSession, str], Any]] = {
        "HELO": helo,
        "EHLO": ehlo,
        "MAIL": mail,
        "RCPT": rcpt,
        "DATA": data,
        "RSET": rset,
        "NOOP": noop,
        "VRFY": vrfy,
        "HELP": help,
        "STARTTLS": starttls,
        "AUTH": auth,
        "QUIT": quit,
    }


class SmtpSink:
    """A minimal SMTP server on loopback, in its own thread and event loop, recording into ``store``.

    ``port=0`` binds a free port; :attr:`port` is the real one once :meth:`start` returned.
    """

    def __init__(
        self,
        store: MessageStore,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "smtp.sandbox.local",
        max_message_bytes: int = 10 * 1024 * 1024,
        idle_timeout: float = 300.0,
        startup_timeout: float = 15.0,
    ) -> None:
        self.store, self.host, self.port, self.hostname = store, host, port, hostname
        self.max_message_bytes, self.idle_timeout = max_message_bytes, idle_timeout
        self._startup_timeout = startup_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> SmtpSink:
        if self._thread is not None:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name=f"hcp-smtp-sink-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._startup_timeout) or self._error is not None:
            self._thread = None
            raise RuntimeError(f"SMTP sink failed to start on {self.host}:{self.port}: {self._error}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() (or lost after a clean start)
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, self.port, limit=64 * 1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopped.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _SmtpSession(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopped, thread = self._loop, self._stopped, self._thread
        if thread is None:
            return
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        thread.join(timeout)
        self._thread = self._loop = self._stopped = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the sandbox with both sinks ------------------------------------------------------------------
#: The phone number the demo and tests send texts from (the sandbox company's, in E.164).
SANDBOX_SMS_FROM = "+15125550100"
SANDBOX_EMAIL_FROM = "Lone Star Home Services <office@lonestarhome.example>"


class SandboxWithSinks(SandboxServer):
    """The Housecall Pro sandbox with the SMS sink mounted (:attr:`sms_base_url`) and, with ``smtp_port``
    (``0`` = a free port), the SMTP sink beside it (:attr:`smtp_port`); both record into :attr:`messages`."""

    def __init__(
        self,
        *args: Any,
        smtp_port: int | None = None,
        sms_account_sid: str = DEFAULT_SMS_ACCOUNT_SID,
        sms_auth_token: str = DEFAULT_SMS_AUTH_TOKEN,
        **kwargs: Any,
    ) -> None:
        self.messages = MessageStore()
        self.sms_account_sid, self.sms_auth_token = sms_account_sid, sms_auth_token
        routers = [messages_router(self.messages), sms_router(self.messages, sms_account_sid, sms_auth_token)]
        super().__init__(*args, routers=routers, on_reset=[self.messages.clear], **kwargs)
        self._smtp = None if smtp_port is None else SmtpSink(self.messages, self.host, smtp_port)

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
        """``AIRFLOW_CONN_…`` variables for the sandbox, the SMS sink (``http``: host = base URL, login = account
        SID, password = auth token, extra ``from_number``) and, when running, the SMTP sink (no TLS, no login)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        conns: dict[str, dict[str, object]] = {
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
        env = super().airflow_connections(housecallpro_conn_id)
        env.update({f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()})
        return env

    def start(self) -> SandboxWithSinks:
        if self._smtp is not None and self._server is None:
            self._smtp.start()
        try:
            super().start()
        except BaseException:
            if self._smtp is not None:
                self._smtp.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self._smtp is not None:
            self._smtp.stop()

    def __enter__(self) -> SandboxWithSinks:
        return self.start()


class SinkAdmin(SandboxAdmin):
    """:class:`SandboxAdmin` plus what the running sandbox's sinks received (read over HTTP)."""

    def messages(self) -> JSON:
        """``{"sms": [{"sid", "to", "from", "body", ...}], "email": [{"to", "from", "subject", "text", ...}]}``."""
        result: JSON = self._call("GET", "/messages")
        return result

    def sms(self) -> list[JSON]:
        texts: list[JSON] = self.messages()["sms"]
        return texts

    def emails(self) -> list[JSON]:
        mails: list[JSON] = self.messages()["email"]
        return mails

    def clear_messages(self) -> None:
        self._call("DELETE", "/messages")


__all__ = [
    "DEFAULT_SMS_ACCOUNT_SID",
    "DEFAULT_SMS_AUTH_TOKEN",
    "MESSAGES_PATH",
    "SANDBOX_EMAIL_FROM",
    "SANDBOX_SMS_FROM",
    "SMS_SINK_PREFIX",
    "MessageStore",
    "SandboxWithSinks",
    "SinkAdmin",
    "SmtpSink",
    "html_to_text",
    "messages_router",
    "parse_email",
    "sms_router",
    "sms_segments",
]
