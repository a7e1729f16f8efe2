"""Narrow unit tests of the sans-I/O core: no network (httpx.Response objects are built in memory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from airflow_provider_housecallpro.api.core import ApiRequest, ClientConfig, HttpCore
from airflow_provider_housecallpro.api.errors import (
    HousecallProAuthError,
    HousecallProConfigError,
    HousecallProNotFoundError,
    HousecallProValidationError,
)

KEY = "unit-SECRET-key"
GET = ApiRequest("GET", "/jobs")
POST = ApiRequest("POST", "/customers", json={})


def core(**kw: object) -> HttpCore:
    return HttpCore(ClientConfig(api_key=KEY, source="connection 'x'", **kw))  # type: ignore[arg-type]


def test_retry_after_seconds_http_date_and_cap() -> None:
    c = core(retry_after_max=60)
    assert c.parse_retry_after("3") == 3.0
    assert c.parse_retry_after("1000") == 60.0
    assert c.parse_retry_after("garbage") is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= c.parse_retry_after(future) <= 30  # type: ignore[operator]


def test_backoff_grows_and_is_capped() -> None:
    c = core(backoff_base=1.0, backoff_max=8.0)
    assert 0.5 <= c.backoff(1) <= 1.0
    assert 4.0 <= c.backoff(4) <= 8.0
    assert 4.0 <= c.backoff(10) <= 8.0


def test_retry_decisions() -> None:
    c = core(max_retries=2)
    assert c.retry_delay(GET, httpx.Response(503), 1) is not None
    assert c.retry_delay(GET, httpx.Response(503), 3) is None  # budget spent
    assert c.retry_delay(POST, httpx.Response(503), 1) is None  # POST outcome unknown
    assert c.retry_delay(POST, httpx.Response(429, headers={"Retry-After": "2"}), 1) == 2.0
    assert c.retry_delay(GET, httpx.Response(422), 1) is None
    assert c.retry_delay(POST, httpx.ReadTimeout("t"), 1) is None
    assert c.retry_delay(POST, httpx.ConnectError("refused"), 1) is not None  # never reached the server


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (401, {"message": "Unauthorized"}, HousecallProAuthError, "Unauthorized"),
        (404, {"error": {"message": "job not found"}}, HousecallProNotFoundError, "job not found"),
        (422, {"errors": {"work_status": "must be an array"}}, HousecallProValidationError, "work_status must be"),
        (400, {"message": "Bad thing", "lead_source": "unknown"}, HousecallProValidationError, "Bad thing"),
    ],
)
def test_error_mapping(status: int, body: dict[str, object], cls: type[Exception], message: str) -> None:
    err = core().api_error(GET, httpx.Response(status, json=body), 1)
    assert isinstance(err, cls)
    assert message in str(err) and f"{status}" in str(err) and "GET /jobs" in str(err)


def test_auth_error_hints_at_the_connection_api_key() -> None:
    err = core().api_error(GET, httpx.Response(401, json={"message": "Unauthorized"}), 1)
    assert "Check the API key in connection 'x'" in str(err)


def test_field_errors_are_kept_and_key_echoed_by_server_is_scrubbed() -> None:
    err = core().api_error(POST, httpx.Response(422, json={"errors": {"email": [f"bad {KEY}"]}}), 1)
    assert isinstance(err, HousecallProValidationError)
    assert err.field_errors == {"email": "bad ***"}
    assert KEY not in str(err)


def test_html_error_body_becomes_a_short_message() -> None:
    err = core().api_error(GET, httpx.Response(502, text="<html><body>Bad gateway</body></html>"), 1)
    assert "Bad gateway" in str(err)


def test_config_rejects_missing_key_and_bad_url_and_hides_key_in_repr() -> None:
    with pytest.raises(HousecallProConfigError, match="No Housecall Pro API key in connection 'x'"):
        ClientConfig(api_key=" ", source="connection 'x'")
    with pytest.raises(HousecallProConfigError, match="must start with http"):
        ClientConfig(api_key=KEY, base_url="ftp://x")
    assert KEY not in repr(ClientConfig(api_key=KEY))


def test_query_string_keeps_brackets_literal() -> None:
    req = ApiRequest("GET", "/jobs", [("work_status[]", "in_progress"), ("q", "a b&c")])
    assert req.url("http://h") == "http://h/jobs?work_status[]=in_progress&q=a%20b%26c"
