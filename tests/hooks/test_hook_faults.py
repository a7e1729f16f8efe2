"""Retries, typed errors and secret hygiene, against faults injected into the live sandbox."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_housecallpro.api.errors import (
    HousecallProAuthError,
    HousecallProDecodeError,
    HousecallProNotFoundError,
    HousecallProRateLimitError,
    HousecallProServerError,
    HousecallProTransportError,
    HousecallProValidationError,
)
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from tests.conftest import API_KEY, FAST, conn_json

NEW_CUSTOMER = {"first_name": "Retry", "last_name": "Probe", "email": "retry.probe@example.com"}


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records if "; retry " in r.getMessage()]


def test_429_is_retried_after_the_servers_retry_after(
    hook: HousecallProHook, admin: SandboxAdmin, all_logs: pytest.LogCaptureFixture
) -> None:
    admin.fault("status", status=429, retry_after="1", path="/company")
    assert hook.get_company().name
    assert [r["status"] for r in admin.requests(path="/company")] == [429, 200]
    assert retry_delays(all_logs) == ["1.00 s"]  # waited what the server asked, not our backoff


def test_429_retry_after_as_http_date_is_honoured(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    admin.fault("status", status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT", path="/company")
    assert hook.get_company().name  # a date in the past means "now"
    assert [r["status"] for r in admin.requests(path="/company")] == [429, 200]


def test_429_without_retry_after_backs_off_then_rate_limit_error(connection: str, admin: SandboxAdmin) -> None:
    hook = HousecallProHook(connection, client_options={**FAST, "max_retries": 2})
    admin.fault("status", status=429, path="/company", times=10)
    with pytest.raises(HousecallProRateLimitError) as info:
        hook.get_company()
    assert info.value.status == 429 and info.value.attempts == 3
    assert len(admin.requests(path="/company")) == 3


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_retried_up_to_the_budget_then_typed_error(connection: str, admin: SandboxAdmin, status: int) -> None:
    hook = HousecallProHook(connection, client_options={**FAST, "max_retries": 3})
    admin.fault("status", status=status, path="/jobs", times=10)
    with pytest.raises(HousecallProServerError) as info:
        hook.list_jobs()
    assert info.value.status == status and info.value.attempts == 4
    assert "after 4 attempts" in str(info.value)
    assert len(admin.requests(path="/jobs")) == 4


def test_5xx_recovers_within_the_budget(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    admin.fault("status", status=503, path="/jobs", times=2)
    assert hook.list_jobs().items
    assert [r["status"] for r in admin.requests(path="/jobs")] == [503, 503, 200]


def test_dropped_connection_retried_then_transport_error(connection: str, admin: SandboxAdmin) -> None:
    hook = HousecallProHook(connection, client_options={**FAST, "max_retries": 2})
    admin.fault("drop", path="/jobs", times=10)
    with pytest.raises(HousecallProTransportError) as info:
        hook.list_jobs()
    assert info.value.attempts == 3 and info.value.maybe_delivered
    assert len(admin.requests(path="/jobs")) == 3


def test_timeout_retried_then_transport_error(connection: str, admin: SandboxAdmin) -> None:
    hook = HousecallProHook(connection, client_options={**FAST, "timeout": 0.2, "max_retries": 1})
    admin.fault("delay", seconds=1.0, path="/company", times=2)
    with pytest.raises(HousecallProTransportError, match="ReadTimeout") as info:
        hook.get_company()
    assert info.value.attempts == 2
    assert len(admin.requests(path="/company")) == 2


async def test_async_path_retries_the_same_way(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    admin.fault("status", status=502, path="/company", times=1)
    admin.fault("drop", path="/company", times=1)
    assert (await hook.aget_company()).name
    assert len(admin.requests(path="/company")) == 3


def test_404_not_retried(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    with pytest.raises(HousecallProNotFoundError):
        hook.get_job("job_missing")
    assert len(admin.requests()) == 1


def test_bare_array_parameter_is_answered_like_the_live_api(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    from airflow_provider_housecallpro.api.core import ApiRequest

    with pytest.raises(HousecallProValidationError) as info:
        hook.get_conn().request(ApiRequest("GET", "/jobs", [("work_status", "scheduled")]))
    assert info.value.status == 422
    assert info.value.field_errors == {"work_status": "must be an array"}
    assert len(admin.requests()) == 1  # 422 is not retried


def test_401_not_retried_and_tells_to_check_the_api_key(sandbox, admin: SandboxAdmin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW_CONN_HCP_BAD", conn_json(sandbox.url, api_key="wrong-key"))
    with pytest.raises(HousecallProAuthError) as info:
        HousecallProHook("hcp_bad", client_options=FAST).get_company()
    assert info.value.status == 401
    assert "Check the API key in connection 'hcp_bad'" in str(info.value)
    assert [r["auth"] for r in admin.requests()] == ["invalid"]


def test_post_not_retried_after_ambiguous_failure(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    admin.fault("drop", when="after", method="POST", path="/customers")
    with pytest.raises(HousecallProTransportError) as info:
        hook.create_customer(NEW_CUSTOMER)
    assert info.value.maybe_delivered
    assert "may have reached Housecall Pro" in str(info.value)
    assert len(admin.requests(method="POST", path="/customers")) == 1
    assert hook.find_customer(email=NEW_CUSTOMER["email"]) is not None  # it did land, exactly once


def test_post_not_retried_on_5xx_but_retried_on_429(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    admin.fault("status", status=500, method="POST", path="/customers")
    with pytest.raises(HousecallProServerError):
        hook.create_customer(NEW_CUSTOMER)
    assert len(admin.requests(method="POST", path="/customers")) == 1
    admin.clear_requests()
    admin.fault("status", status=429, retry_after="0", method="POST", path="/customers")
    created = hook.create_customer(NEW_CUSTOMER)
    assert created.id.startswith("cus_")
    assert [r["status"] for r in admin.requests(method="POST", path="/customers")] == [429, 201]


def test_malformed_json_is_a_typed_error(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    admin.fault("malformed", path="/jobs")
    with pytest.raises(HousecallProDecodeError, match="not valid JSON") as info:
        hook.list_jobs()
    assert info.value.status == 200


def test_api_key_never_in_errors_logs_or_reprs(
    hook: HousecallProHook, admin: SandboxAdmin, all_logs: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = [repr(hook), repr(hook.get_conn()), repr(hook.get_client_config())]
    for kind, params in [
        ("status", {"status": 503, "times": 10}),
        ("drop", {"times": 10}),
        ("malformed", {}),
        ("status", {"status": 429, "times": 10, "retry_after": "0"}),
    ]:
        admin.clear_faults()
        admin.fault(kind, path="/jobs", **params)
        with pytest.raises(Exception) as info:
            hook.list_jobs()
        seen += [str(info.value), repr(info.value), str(info.value.__cause__), str(info.value.__context__)]
    with pytest.raises(HousecallProNotFoundError) as nf:
        hook.get_customer("cus_missing")
    seen += [str(nf.value), repr(nf.value)]
    logging.getLogger("airflow_provider_housecallpro").debug("flush")
    seen += [r.getMessage() for r in all_logs.records] + [all_logs.text]
    assert any("retry" in s for s in seen)  # we did look at real retry logs
    assert not [s for s in seen if API_KEY in s]
    assert not [r for r in admin.requests() if API_KEY in str(r)]
