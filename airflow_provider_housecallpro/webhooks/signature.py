"""Housecall Pro's webhook signature (pure: no I/O).

A delivery carries ``api-timestamp`` (Unix seconds) and ``api-signature`` = hex HMAC-SHA256 of
``f"{api-timestamp}.{raw body}"`` keyed with the signing secret set in Housecall Pro's webhook settings. The check
runs over the raw bytes as received (never a re-serialised body), compares in constant time, and refuses a
timestamp further than ``tolerance`` seconds from now in either direction (a replayed or pre-dated delivery).
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "api-timestamp"
SIGNATURE_HEADER = "api-signature"
DEFAULT_TOLERANCE = 300.0  # seconds either side of now


class SignatureError(ValueError):
    """Why a delivery is refused (never contains the secret or the body)."""


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``api-signature`` Housecall Pro sends for ``body`` at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """The delivery's timestamp when ``signature`` signs ``body``; :class:`SignatureError` naming the rule otherwise."""
    if not secret:
        raise SignatureError("no webhook secret is configured")
    if not timestamp:
        raise SignatureError(f"{TIMESTAMP_HEADER} header is missing")
    if not signature:
        raise SignatureError(f"{SIGNATURE_HEADER} header is missing")
    if not timestamp.isascii() or not timestamp.strip().isdigit() or len(timestamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds")
    stamp = int(timestamp.strip())
    if stamp < now - tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than {tolerance:.0f} s old (a replay?)")
    if stamp > now + tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than {tolerance:.0f} s in the future")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8", "replace")):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")
    return stamp
