"""Fault rules, the request log, and the ASGI middleware that applies both to Housecall Pro routes.

The middleware runs for every request outside ``/_sandbox``: it logs the request (never the key), picks the
first matching fault rule, applies it, checks the ``Authorization: Token`` header, then lets the app answer.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from .operations import JOB_OPS, apply
from .records import JSON, WorldError
from .world import World

ADMIN_PREFIX = "/_sandbox"
FAULT_KINDS = ("status", "delay", "drop", "malformed", "mutate")
_RULE_KEYS = frozenset({"kind", "method", "path", "times", "after", "page", "account"})
_KIND_KEYS: dict[str, frozenset[str]] = {
    "status": frozenset({"status", "retry_after", "body", "content_type", "location", "set_cookie"}),
    "delay": frozenset({"seconds", "when"}),
    "drop": frozenset({"when"}),
    "malformed": frozenset({"body"}),
    "mutate": frozenset({"op", "job_id"}),  # + the op's own body fields, checked when applied
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)


class ConnectionDropped(Exception):
    """Raised after a partial response so uvicorn closes the socket (a ``drop`` fault)."""


class _HideDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def install_log_filter() -> None:
    """Keep uvicorn from logging an error traceback for every intentional drop."""
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDrops) for f in log.filters):
        log.addFilter(_HideDrops())


def path_matches(pattern: str | None, path: str) -> bool:
    """Exact match, or prefix match when the pattern ends with ``*``; ``None`` matches everything."""
    if pattern is None:
        return True
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


@dataclass
class FaultRule:
    id: str
    kind: str
    method: str | None
    path: str | None
    times: int | None  # None = unlimited
    after: int
    page: int | None
    params: dict[str, Any]
    account: str | None = None  # only requests made with this account's key (None: any)
    fired: int = 0
    skipped: int = 0
    last_error: str | None = None

    def matches(self, method: str, path: str, page: int | None, account: str | None = None) -> bool:
        return (
            (self.account is None or self.account == account)
            and (self.method is None or self.method == method)
            and path_matches(self.path, path)
            and (self.page is None or self.page == page)
        )

    def to_json(self) -> JSON:
        data = {k: v for k, v in self.__dict__.items() if k != "params"}
        data.update(self.params)
        return data


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _opt_int(spec: Mapping[str, Any], key: str, default: int | None, minimum: int) -> int | None:
    value = spec.get(key, default)
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= minimum)
    _check(ok, f"{key} must be an integer >= {minimum}")
    return None if value is None else int(value)


def build_rule(rule_id: str, spec: Mapping[str, Any]) -> FaultRule:
    """Validate a ``POST /_sandbox/faults`` body; raises ``ValueError`` with a readable message."""
    kind = spec.get("kind")
    _check(kind in FAULT_KINDS, f"kind must be one of {', '.join(FAULT_KINDS)}")
    assert isinstance(kind, str)
    method, path = spec.get("method"), spec.get("path")
    _check(method is None or isinstance(method, str), "method must be a string")
    _check(path is None or (isinstance(path, str) and path.startswith("/")), "path must start with /")
    account = spec.get("account")
    _check(account is None or (isinstance(account, str) and bool(account)), "account must be an account name")
    params = {k: v for k, v in spec.items() if k not in _RULE_KEYS}
    if kind != "mutate":
        unknown = sorted(set(params) - _KIND_KEYS[kind])
        _check(not unknown, f"unknown field(s) for {kind}: {', '.join(unknown)}")
    if kind == "status":
        status = params.get("status")
        _check(isinstance(status, int) and 100 <= status <= 599, "status must be an HTTP status code")
        for key in ("retry_after", "body", "content_type", "location", "set_cookie"):
            _check(params.get(key) is None or isinstance(params[key], str), f"{key} must be a string")
    elif kind == "delay":
        seconds = params.get("seconds")
        _check(isinstance(seconds, int | float) and seconds >= 0, "seconds must be a number >= 0")
        params.setdefault("when", "before")  # "after": process the request, then wait before answering
        _check(params["when"] in ("before", "after"), 'when must be "before" or "after"')
    elif kind == "drop":
        params.setdefault("when", "before")
        _check(params["when"] in ("before", "after"), 'when must be "before" or "after"')
    elif kind == "malformed":
        _check(params.get("body") is None or isinstance(params["body"], str), "body must be a string")
    else:
        _check(params.get("op") in JOB_OPS, f"op must be one of {', '.join(JOB_OPS)}")
        _check(params.get("op") == "book" or isinstance(params.get("job_id"), str), "job_id is required")
    return FaultRule(
        id=rule_id,
        kind=kind,
        method=method.upper() if method else None,
        path=path,
        times=_opt_int(spec, "times", 1, 1),
        after=_opt_int(spec, "after", 0, 0) or 0,
        page=_opt_int(spec, "page", None, 1),
        params=params,
        account=account,
    )


class FaultQueue:
    """Rules in the order added; the first rule that fires on a request wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, spec: Mapping[str, Any]) -> FaultRule:
        with self._lock:
            rule = build_rule(f"flt_{next(self._ids)}", spec)
            self._rules.append(rule)
            return rule

    def list(self) -> list[JSON]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str, page: int | None, account: str | None = None) -> FaultRule | None:
        """The rule that fires for this request (consuming one of its ``times``), if any.

        A matching rule first lets ``after`` requests through (those may still fire a later rule).
        """
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, page, account):
                    continue
                if rule.skipped < rule.after:
                    rule.skipped += 1
                    continue
                rule.fired += 1
                if rule.times is not None and rule.fired >= rule.times:
                    self._rules.remove(rule)
                return rule
            return None


class RequestLog:
    """Every Housecall Pro request in arrival order (bounded); never holds the Authorization header."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[JSON] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def record(self, entry: JSON) -> JSON:
        with self._lock:
            entry = {"seq": next(self._seq), **entry}
            self._entries.append(entry)
            return entry

    def list(self, path: str | None = None, method: str | None = None) -> list[JSON]:
        with self._lock:
            entries = list(self._entries)
        return [
            dict(e)
            for e in entries
            if path_matches(path, e["path"]) and (method is None or e["method"] == method.upper())
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None


def _page_of(query: list[tuple[str, str]]) -> int | None:
    value = dict(query).get("page", "1")
    return int(value) if value.isdigit() else None


async def _respond(send: Send, status: int, body: bytes, content_type: str, extra: JSON | None = None) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), str(v).encode("latin-1")) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _die(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> NoReturn:
    """Promise more bytes than we send, then raise: uvicorn closes the connection mid-body."""
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body) + 4096).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    raise ConnectionDropped("sandbox drop fault")


_DEFAULT_5XX = b"<html><body><h1>Service Unavailable</h1><p>The server is temporarily unavailable.</p></body></html>"


class Accounts(dict[str, str]):
    """API key -> account name: the keys the sandbox accepts."""


@dataclass
class SandboxMiddleware:
    """Logging, faults and token auth for every route outside ``/_sandbox``.

    ``accounts`` maps each API key the sandbox accepts to the name of its account (one world serves them all);
    the request log records the account a request authenticated as (never the key)."""

    app: ASGIApp
    world: World
    faults: FaultQueue
    log: RequestLog
    accounts: Accounts

    def _auth(self, header: str | None) -> tuple[str, str | None]:
        if header is None or not header.strip():
            return "missing", None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() == "token":
            for key, name in list(self.accounts.items()):
                if hmac.compare_digest(token.strip().encode(), key.encode()):
                    return "ok", name
        return "invalid", None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        auth, account = self._auth(headers.get("authorization"))
        entry = self.log.record(
            {
                "method": method,
                "path": path,
                "query": [[k, v] for k, v in query],
                "json": _json_or_none(body),
                "status": None,
                "auth": auth,
                "account": account,
                "headers": {h: headers.get(h) for h in ("user-agent", "x-company-id", "accept", "cookie")},
                "received_at": self.world.clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "bytes": 0,  # of the response body the API routes sent (benchmarks)
            }
        )
        rule = self.faults.take(method, path, _page_of(query), account)
        kind = rule.kind if rule else None
        params = rule.params if rule else {}
        if rule is not None and kind == "status":
            await self._status_fault(send, entry, params)
            return
        if kind == "malformed":
            entry["status"] = 200
            await _respond(send, 200, params.get("body", '{"jobs": [').encode(), "application/json")
            return
        if kind == "drop" and params["when"] == "before":
            await _die(send, 200, [(b"content-type", b"application/json")], b'{"page": 1, "jobs": [{"id": "job_')
        if kind == "delay" and params["when"] == "before":
            await asyncio.sleep(float(params["seconds"]))
        if rule is not None and kind == "mutate":
            self._mutate(rule)
        if auth != "ok":
            entry["status"] = 401
            body_401 = b'{"message": "Unauthorized"}'
            await _respond(send, 401, body_401, "application/json", {"www-authenticate": 'Token realm="Application"'})
            return
        if kind == "drop":
            await self._drop_after(scope, replay, send)
            return

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                # The server's clock, as Housecall Pro's sends it (the sandbox's may be set or frozen).
                date = format_datetime(self.world.clock.now(), usegmt=True).encode("latin-1")
                message = {**message, "headers": [*message.get("headers", ()), (b"date", date)]}
            elif message["type"] == "http.response.body":
                entry["bytes"] += len(message.get("body", b""))
                if kind == "delay" and params["when"] == "after":  # done, but the answer comes late
                    await asyncio.sleep(float(params["seconds"]))
            await send(message)

        try:
            await self.app(scope, replay, logged_send)
        except Exception:
            if entry["status"] is None:
                entry["status"] = 500
            raise

    async def _status_fault(self, send: Send, entry: JSON, params: Mapping[str, Any]) -> None:
        status: int = params["status"]
        body: str | None = params.get("body")
        if body is None:
            if status == 429:
                body = '{"message": "Too Many Requests"}'
            elif status >= 500:
                body = _DEFAULT_5XX.decode()
            else:
                body = json.dumps({"error": {"message": f"sandbox fault {status}"}})
        content_type = params.get("content_type") or ("application/json" if _is_json(body) else "text/html")
        headers = {"retry-after": "retry_after", "location": "location", "set-cookie": "set_cookie"}
        extra = {header: params[key] for header, key in headers.items() if params.get(key) is not None}
        entry["status"] = status
        await _respond(send, status, body.encode(), content_type, extra)

    def _mutate(self, rule: FaultRule) -> None:
        body = {k: v for k, v in rule.params.items() if k not in ("op", "job_id")}
        try:
            apply(self.world, rule.params["op"], rule.params.get("job_id"), body)
        except WorldError as exc:
            rule.last_error = exc.message
            logger.warning("sandbox mutate fault %s failed: %s", rule.id, exc.message)

    async def _drop_after(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the app fully process the request, then cut the response short."""
        start: Message = {}
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        await _die(send, start.get("status", 200), list(start.get("headers", [])), b"".join(parts))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


__all__ = [
    "ADMIN_PREFIX",
    "FAULT_KINDS",
    "Accounts",
    "ConnectionDropped",
    "FaultQueue",
    "FaultRule",
    "RequestLog",
    "SandboxMiddleware",
    "install_log_filter",
]
