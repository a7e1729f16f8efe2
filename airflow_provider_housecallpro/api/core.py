"""The one HTTP core shared by the sync and async clients (sans I/O).

It builds requests, decides about retries and turns responses into results or typed errors. It does no
I/O itself: :meth:`HttpCore.attempts` is a generator that yields how long to wait before each attempt
and is sent each attempt's outcome (a response or a transport exception). The sync and async clients
are thin drivers that only send, sleep and feed outcomes back, so retry policy, ``Retry-After``
handling, error mapping and key scrubbing exist exactly once.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import platform
import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httpx

from airflow_provider_housecallpro import KEY_LABEL, KEYS_WHERE, __version__
from airflow_provider_housecallpro.api.errors import (
    HousecallProAPIError,
    HousecallProAuthError,
    HousecallProConfigError,
    HousecallProDecodeError,
    HousecallProNotFoundError,
    HousecallProRateLimitError,
    HousecallProRequestError,
    HousecallProServerError,
    HousecallProTransportError,
    HousecallProValidationError,
)
from airflow_provider_housecallpro.urls import DEFAULT_BASE_URL

log = logging.getLogger("airflow_provider_housecallpro.api")


def is_loopback(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Failures that prove the request never reached the server: safe to retry even for a POST.
_NOT_DELIVERED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

Outcome = httpx.Response | httpx.TransportError


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs. ``api_key`` is excluded from ``repr``."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    company_id: str | None = None
    # Who configured this client (e.g. "connection 'housecallpro_default'"), used in hints.
    source: str = "the client configuration"
    user_agent_extra: str = ""

    def __post_init__(self) -> None:
        if not self.api_key or not self.api_key.strip():
            raise HousecallProConfigError(
                f"No Housecall Pro {KEY_LABEL} in {self.source}; keys are made in {KEYS_WHERE}"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise HousecallProConfigError(
                f"API base URL in {self.source} must start with http:// or https://; got {self.base_url!r}"
            )
        if self.base_url.startswith("http://") and not is_loopback(urlsplit(self.base_url).hostname):
            raise HousecallProConfigError(
                f"API base URL in {self.source} must use https (the API key travels in every request); "
                f"plain http is only allowed on loopback, e.g. the local sandbox. Got {self.base_url!r}"
            )
        for name in ("timeout", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise HousecallProConfigError(f"{name} in {self.source} must be a positive number of seconds")
        if self.max_retries < 0:
            raise HousecallProConfigError(f"max_retries in {self.source} must be 0 or more")

    @property
    def user_agent(self) -> str:
        parts = [f"airflow-provider-housecallpro/{__version__}", self.user_agent_extra]
        parts += [f"httpx/{httpx.__version__}", f"python/{platform.python_version()}"]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class ApiRequest:
    """One logical API call: method, path (no host), query pairs and JSON body."""

    method: str
    path: str
    params: Sequence[tuple[str, str]] = ()
    json: Any = None
    # Answer with the server's clock too (:class:`Served`): the ``Date`` header of the response.
    dated: bool = False

    @property
    def idempotent(self) -> bool:
        return self.method in ("GET", "HEAD", "OPTIONS")

    def url(self, base_url: str) -> str:
        """Full URL; the query keeps array brackets literal (``work_status[]=...``)."""
        url = base_url.rstrip("/") + self.path
        if self.params:
            url += "?" + "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in self.params)
        return url


class Served(NamedTuple):
    """A decoded body with the instant the server says it answered (its ``Date`` header; None without one)."""

    data: Any
    at: datetime | None


def date_header(value: str | None) -> datetime | None:
    """A response's ``Date`` header (RFC 9110 IMF-fixdate) as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@functools.lru_cache(maxsize=256)
def _parsed(url: str) -> httpx.URL:
    """``url`` parsed once (``httpx.URL`` is immutable): the idle poll of every account asks for the same page."""
    return httpx.URL(url)


class HttpCore:
    """Request building, retry decisions and error mapping for one :class:`ClientConfig`."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        # The config is frozen: what every request carries is worked out once (a poll builds a request a second
        # per account).
        self._headers = self.headers()
        self._timeouts = self.timeout().as_dict()

    # -- building ---------------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Token {self.config.api_key}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": self.config.user_agent,
        }
        if self.config.company_id:
            headers["X-Company-Id"] = self.config.company_id
        return headers

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout)

    def build(self, request: ApiRequest) -> httpx.Request:
        """The whole request: headers, credentials and timeouts are its own, nothing comes from a client's defaults
        (the pool that sends it is shared by many accounts, :mod:`.pool`)."""
        return httpx.Request(
            request.method,
            _parsed(request.url(self.config.base_url)),
            json=request.json,
            headers=self._headers,
            extensions={"timeout": self._timeouts},
        )

    # -- the attempt loop -------------------------------------------------------------------------
    def attempts(self, request: ApiRequest) -> Generator[float, Outcome, Any]:
        """Yield the wait before each attempt; receive its outcome; return the decoded JSON body.

        Raises a typed :class:`HousecallProRequestError` when the call fails for good.
        """
        attempt = 0
        delay = 0.0
        while True:
            outcome = yield delay
            attempt += 1
            retry_in = self.retry_delay(request, outcome, attempt)
            if retry_in is None:
                return self.finish(request, outcome, attempt)
            log.warning(
                "Housecall Pro %s %s: %s; retry %d/%d in %.2f s",
                request.method,
                request.path,
                self._describe(outcome),
                attempt,
                self.config.max_retries,
                retry_in,
            )
            delay = retry_in

    def retry_delay(self, request: ApiRequest, outcome: Outcome, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None to stop and finish with this outcome."""
        if attempt > self.config.max_retries:
            return None
        if isinstance(outcome, httpx.TransportError):
            if not request.idempotent and not isinstance(outcome, _NOT_DELIVERED):
                return None  # the POST may have landed: never blindly repeat it
            return self.backoff(attempt)
        status = outcome.status_code
        if status == 429:  # rejected before processing: safe for any method
            retry_after = self.parse_retry_after(outcome.headers.get("Retry-After"))
            return self.backoff(attempt) if retry_after is None else retry_after
        if status in RETRYABLE_STATUSES and request.idempotent:
            return self.backoff(attempt)
        return None

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random."""
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def parse_retry_after(self, value: str | None) -> float | None:
        """``Retry-After`` as seconds or an HTTP date, capped at ``retry_after_max``."""
        if not value:
            return None
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        return float(min(max(seconds, 0.0), self.config.retry_after_max))

    # -- results and errors -----------------------------------------------------------------------
    def finish(self, request: ApiRequest, outcome: Outcome, attempts: int) -> Any:
        if isinstance(outcome, httpx.TransportError):
            raise self.transport_error(request, outcome, attempts)
        if outcome.is_success:
            data = self.decode(request, outcome, attempts)
            return Served(data, date_header(outcome.headers.get("Date"))) if request.dated else data
        raise self.api_error(request, outcome, attempts)

    def decode(self, request: ApiRequest, outcome: httpx.Response, attempts: int) -> Any:
        if outcome.status_code == 204 or not outcome.content:
            return None
        try:
            return outcome.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HousecallProDecodeError(
                f"Housecall Pro {request.method} {request.path} answered {outcome.status_code} "
                f"with a body that is not valid JSON: {self._snippet(outcome.text)!r}",
                method=request.method,
                path=request.path,
                status=outcome.status_code,
                attempts=attempts,
            ) from None

    def transport_error(
        self, request: ApiRequest, exc: httpx.TransportError, attempts: int
    ) -> HousecallProTransportError:
        maybe_delivered = not isinstance(exc, _NOT_DELIVERED)
        hint = None
        if maybe_delivered and not request.idempotent:
            hint = (
                "The request may have reached Housecall Pro, so it was not repeated; "
                "check whether it took effect before trying again"
            )
        elif isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            hint = f"Check the API base URL in {self.config.source} and the network"
        return HousecallProTransportError(
            f"Housecall Pro {request.method} {request.path} failed: {self._describe(exc)}",
            maybe_delivered=maybe_delivered,
            method=request.method,
            path=request.path,
            hint=hint,
            attempts=attempts,
        )

    def api_error(self, request: ApiRequest, response: httpx.Response, attempts: int) -> HousecallProAPIError:
        status = response.status_code
        api_message, field_errors = self.parse_error_body(response)
        text = f"Housecall Pro {request.method} {request.path} answered {status} {response.reason_phrase}"
        if api_message:
            text += f": {api_message}"
        common: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "api_message": api_message,
            "attempts": attempts,
        }
        if status == 401:
            return HousecallProAuthError(
                text,
                hint=f"Check the {KEY_LABEL} in {self.config.source}; keys are made in {KEYS_WHERE}",
                **common,
            )
        if status == 403:
            return HousecallProAuthError(
                text,
                hint=f"The API key in {self.config.source} lacks permission; give it Full Access",
                **common,
            )
        if status in (404, 410):
            return HousecallProNotFoundError(text, **common)
        if status in (400, 422):
            return HousecallProValidationError(text, field_errors=field_errors, **common)
        if status == 429:
            return HousecallProRateLimitError(
                text,
                retry_after=self.parse_retry_after(response.headers.get("Retry-After")),
                hint="Housecall Pro is rate limiting this API key; poll less often or raise the retry limit",
                **common,
            )
        if status >= 500:
            return HousecallProServerError(text, **common)
        return HousecallProAPIError(text, **common)

    def parse_error_body(self, response: httpx.Response) -> tuple[str | None, dict[str, Any]]:
        """The API's message and field errors: ``error.message``, then ``errors``, then ``message``, then text."""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            text = self._snippet(response.text)
            return (text or None), {}
        if not isinstance(body, dict):
            return self._snippet(json.dumps(body)), {}
        error = body.get("error")
        errors = body.get("errors")
        field_errors: dict[str, Any] = dict(errors) if isinstance(errors, dict) else {}
        field_errors.update({k: v for k, v in body.items() if k not in ("error", "errors", "message")})
        if isinstance(error, dict) and error.get("message"):
            message = str(error["message"])
        elif isinstance(error, str):
            message = error
        elif isinstance(errors, dict) and errors:
            message = "; ".join(f"{k} {self._join(v)}" for k, v in errors.items())
        elif isinstance(errors, list) and errors:
            message = "; ".join(str(e) for e in errors)
        elif body.get("message"):
            message = str(body["message"])
        else:
            message = self._snippet(response.text)
        return self.scrub(message), {k: self.scrub(self._join(v)) for k, v in field_errors.items()}

    # -- helpers ----------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """Remove the API key from any text that came back from the server."""
        return text.replace(self.config.api_key, "***") if self.config.api_key else text

    def _snippet(self, text: str, limit: int = 300) -> str:
        text = " ".join(text.split())
        return self.scrub(text if len(text) <= limit else text[:limit] + "…")

    @staticmethod
    def _join(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    def _describe(self, outcome: Outcome) -> str:
        if isinstance(outcome, httpx.Response):
            return f"{outcome.status_code} {outcome.reason_phrase}"
        detail = self.scrub(str(outcome)) or "no detail"
        return f"{type(outcome).__name__} ({detail})"


__all__ = ["ApiRequest", "ClientConfig", "HousecallProRequestError", "HttpCore", "Outcome"]
