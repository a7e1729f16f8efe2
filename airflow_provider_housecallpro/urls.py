"""Housecall Pro's base URL, and a base URL from an Airflow connection's host, port and schema fields."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.housecallpro.com"  # the one definition
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def base_url(host: str | None, port: int | None, schema: str | None, default: str) -> str:
    """``host`` may be a full URL or a bare host name (``http`` on loopback, else ``https``); empty = default."""
    host = (host or "").strip().rstrip("/")
    if not host:
        return default
    if "://" not in host:
        bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        scheme = schema if schema in ("http", "https") else ("http" if bare in _LOOPBACK else "https")
        host = f"{scheme}://{host}"
    if port and urlsplit(host).port is None:
        parts = urlsplit(host)
        host = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
    return host
