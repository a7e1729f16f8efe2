"""Typed exceptions for everything that can go wrong talking to Housecall Pro.

All of them derive from :class:`HousecallProError`. They never carry the API key: messages are built
from the HTTP method, the path, the status and the API's own error text (with the key scrubbed out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HousecallProError(Exception):
    """Base class of every error raised by this provider's Housecall Pro client."""


class HousecallProInputError(HousecallProError, ValueError):
    """Input rejected by our own validation, before any request was made.

    ``errors`` maps each offending field to what is wrong with it.
    """

    def __init__(self, what: str, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        lines = "; ".join(f"{field}: {rule}" for field, rule in self.errors.items())
        super().__init__(f"Invalid {what} — {lines}. No request was sent to Housecall Pro.")


class HousecallProConfigError(HousecallProError, ValueError):
    """The connection (API key, base URL, extras) is unusable."""


class HousecallProRequestError(HousecallProError):
    """A request to Housecall Pro failed. Carries the method and path (never headers or the key)."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status: int | None = None,
        api_message: str | None = None,
        hint: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.api_message = api_message
        self.hint = hint
        self.attempts = attempts
        text = message
        if attempts > 1:
            text += f" (after {attempts} attempts)"
        if hint:
            text += f". {hint}"
        super().__init__(text)


class HousecallProTransportError(HousecallProRequestError):
    """No usable HTTP response: connection refused or dropped, timeout, TLS failure.

    ``maybe_delivered`` is True when the request may have reached Housecall Pro (e.g. the connection
    dropped after the request was sent): a POST must then not be blindly repeated.
    """

    def __init__(self, message: str, *, maybe_delivered: bool, **kwargs: Any) -> None:
        self.maybe_delivered = maybe_delivered
        super().__init__(message, **kwargs)


class HousecallProDecodeError(HousecallProRequestError):
    """Housecall Pro answered with a body that is not the JSON we expected."""


class HousecallProAPIError(HousecallProRequestError):
    """Housecall Pro answered with an error status."""

    status: int


class HousecallProAuthError(HousecallProAPIError):
    """401/403: the API key is missing, wrong, revoked or lacks permissions."""


class HousecallProNotFoundError(HousecallProAPIError):
    """404/410: the resource does not exist (or was deleted)."""


class HousecallProValidationError(HousecallProAPIError):
    """400/422: Housecall Pro rejected the request. ``field_errors`` holds the API's per-field errors."""

    def __init__(self, message: str, *, field_errors: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.field_errors = dict(field_errors or {})
        super().__init__(message, **kwargs)


class HousecallProRateLimitError(HousecallProAPIError):
    """429 after the retry budget was spent. ``retry_after`` is the server's last hint, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class HousecallProServerError(HousecallProAPIError):
    """5xx after the retry budget was spent (or on a POST, which is not retried)."""
