"""The sandbox's clock in the ``Date`` header and its late commits (``POST /_sandbox/late``), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest

from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxAdminError, SandboxServer
from tests.conftest import API_KEY


@pytest.fixture
def api(sandbox: SandboxServer, admin: SandboxAdmin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Token {API_KEY}"}, timeout=10) as client:
        yield client


def test_the_date_header_is_the_sandbox_clock(api: httpx.Client, admin: SandboxAdmin) -> None:
    admin.clock(freeze=True, set="2031-02-03T04:05:06Z")
    response = api.get("/jobs", params={"page_size": 1})
    assert response.headers.get_list("date") == ["Mon, 03 Feb 2031 04:05:06 GMT"]
    assert parsedate_to_datetime(response.headers["date"]).isoformat() == "2031-02-03T04:05:06+00:00"


def _job(api: httpx.Client, job_id: str) -> httpx.Response:
    return api.get(f"/jobs/{job_id}")


def _listed(api: httpx.Client) -> dict[str, dict[str, object]]:
    body = api.get("/jobs", params={"page_size": 200, "sort_by": "updated_at"}).raise_for_status().json()
    return {j["id"]: j for j in body["jobs"]}


def test_a_late_write_shows_the_version_before_it_until_it_commits(api: httpx.Client, admin: SandboxAdmin) -> None:
    admin.clock(freeze=True, set="2031-02-03T04:00:00Z")
    open_job = next(j for j in admin.all_jobs() if j["work_status"] == "scheduled")
    before = _job(api, open_job["id"]).json()
    admin.late(share=1.0, min_seconds=29.5, max_seconds=29.5)
    admin.reschedule(open_job["id"], scheduled_start="2031-03-01T15:00:00Z")
    booked = admin.book_job(customer_id=open_job["customer"]["id"], scheduled_start="2031-03-02T15:00:00Z")
    summary = admin.state()["late"]
    assert summary["pending"] == 2 and summary["late_writes"] == 2
    assert summary["visible_by"] == "2031-02-03T04:00:30Z"  # 29.5 s, rounded up
    assert _job(api, open_job["id"]).json() == before  # the old version, old updated_at
    assert _job(api, booked["id"]).status_code == 404
    listed = _listed(api)
    assert listed[open_job["id"]]["updated_at"] == before["updated_at"] and booked["id"] not in listed
    admin.late(share=0)
    admin.edit(open_job["id"], notes="committed at once, behind the held write")
    assert _job(api, open_job["id"]).json() == before  # a row lock orders it after the held one

    admin.clock(advance_seconds=29)
    assert _job(api, booked["id"]).status_code == 404  # half a second to go
    admin.clock(set=summary["visible_by"])
    now = _job(api, open_job["id"]).json()
    assert now["schedule"]["scheduled_start"] == "2031-03-01T15:00:00Z"
    assert now["updated_at"] == "2031-02-03T04:00:00Z"  # stamped when saved, 30 s before it became visible
    assert _listed(api)[booked["id"]]["updated_at"] == "2031-02-03T04:00:00Z"
    assert admin.state()["late"]["pending"] == 0


def test_late_commits_are_off_after_a_reset_and_checked(admin: SandboxAdmin) -> None:
    admin.late(share=0.5)
    assert admin.reset()["late"]["share"] == 0
    for bad in ({"share": 2}, {"share": 0.1, "min_seconds": 10, "max_seconds": 5}, {"share": "x"}):
        with pytest.raises(SandboxAdminError) as err:
            admin._call("POST", "/late", bad)
        assert err.value.status_code == 422
