"""The sandbox itself, over real HTTP: auth, envelopes, filters, sorting, errors, faults, log, clock, ops."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxAdminError, SandboxServer
from airflow_provider_housecallpro.sandbox.catalog import STATUS_FILTERS, WORK_STATUSES
from tests.conftest import API_KEY

KEY = API_KEY
AUTH = {"Authorization": f"Token {KEY}"}
JOB_FIELDS = {
    "id", "invoice_number", "description", "customer", "address", "notes", "work_status", "work_timestamps",
    "schedule", "total_amount", "outstanding_balance", "subtotal", "assigned_employees", "tags",
    "original_estimate_id", "original_estimate_uuids", "lead_source", "job_fields", "locked_at", "created_at",
    "updated_at", "canceled_at", "deleted_at", "company_name", "company_id", "recurrence_number",
    "recurrence_rule", "assigned_route_template_id",
}  # fmt: skip
CUSTOMER_FIELDS = {
    "id", "first_name", "last_name", "email", "mobile_number", "home_number", "work_number", "company",
    "notifications_enabled", "lead_source", "notes", "kind", "tags", "addresses", "created_at", "updated_at",
    "company_name", "company_id",
}  # fmt: skip


@pytest.fixture
def server(sandbox: SandboxServer) -> SandboxServer:
    return sandbox


@pytest.fixture
def ctl(admin: SandboxAdmin) -> SandboxAdmin:
    return admin


@pytest.fixture
def api(server: SandboxServer, ctl: SandboxAdmin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as client:
        yield client


def all_jobs(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    body = api.get("/jobs", params={"page_size": 200, **params}).raise_for_status().json()
    assert body["total_items"] <= 200
    jobs: list[dict[str, Any]] = body["jobs"]
    return jobs


def ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [j["id"] for j in jobs]


# --------------------------------------------------------------------------- auth
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Token wrong-key"}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": KEY}],
    ids=["missing", "wrong", "bearer", "no-scheme"],
)
@pytest.mark.parametrize("path", ["/jobs", "/company", "/customers", "/no/such/route"])
def test_auth_required(server: SandboxServer, ctl: SandboxAdmin, headers: dict[str, str], path: str) -> None:
    response = httpx.get(server.url + path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_admin_needs_no_auth_and_token_works(server: SandboxServer, ctl: SandboxAdmin) -> None:
    assert httpx.get(server.url + "/_sandbox/state").status_code == 200
    assert httpx.get(server.url + "/company", headers=AUTH).status_code == 200


# ------------------------------------------------------------------ seeded world
def test_company(api: httpx.Client) -> None:
    company = api.get("/company").json()
    assert company["name"] == "Lone Star Home Services"
    assert company["time_zone"] == "America/Chicago"
    for key in ("id", "support_email", "phone_number", "logo_url", "address", "website", "default_arrival_window"):
        assert company[key]


def test_seed_covers_every_status_and_shape(api: httpx.Client) -> None:
    jobs = all_jobs(api)
    assert len(jobs) == 60
    assert {j["work_status"] for j in jobs} == set(WORK_STATUSES)
    for job in jobs:
        # fields the spec does not let be null are left out when unset (test_spec_conformance checks the rest)
        assert JOB_FIELDS - {"locked_at", "recurrence_number", "recurrence_rule"} <= set(job) <= JOB_FIELDS
        assert job["id"].startswith("job_")
        for key in ("created_at", "updated_at"):
            assert job[key].endswith("Z") and len(job[key]) == 20
        assert isinstance(job["total_amount"], int) and isinstance(job["outstanding_balance"], int)
        if job["work_status"] == "needs scheduling":
            assert job["schedule"] == {}
        else:
            assert set(job["schedule"]) == {"scheduled_start", "scheduled_end", "arrival_window"}
        assert job["customer"]["id"].startswith("cus_")
        assert all(e["id"].startswith("pro_") and "permissions" in e for e in job["assigned_employees"])
    assert any("locked_at" in j for j in jobs) and any("recurrence_rule" in j for j in jobs)
    assert any(len(j["assigned_employees"]) > 1 for j in jobs)
    assert any(not j["assigned_employees"] for j in jobs)
    assert any(j["outstanding_balance"] == 0 for j in jobs) and any(j["outstanding_balance"] > 0 for j in jobs)
    upcoming = [j for j in jobs if j["work_status"] == "scheduled"]
    now = httpx.get(f"{api.base_url}/_sandbox/clock").json()["now"]
    assert any(j["schedule"]["scheduled_start"] > now for j in upcoming)


def test_seed_is_deterministic(api: httpx.Client, ctl: SandboxAdmin) -> None:
    first = ids(all_jobs(api, sort_by="id"))
    ctl.reset(seed=1)
    assert ids(all_jobs(api, sort_by="id")) == first
    ctl.reset(seed=2)
    assert ids(all_jobs(api, sort_by="id")) != first


def test_get_job_and_line_items(api: httpx.Client) -> None:
    listed = all_jobs(api)[0]
    assert api.get(f"/jobs/{listed['id']}").json() == listed
    items = api.get(f"/jobs/{listed['id']}/line_items").json()
    assert items["url"] == f"/jobs/{listed['id']}/line_items"
    assert items["data"] and {"name", "unit_price", "quantity", "kind", "description"} <= set(items["data"][0])
    assert sum(li["unit_price"] * li["quantity"] for li in items["data"]) == listed["subtotal"]


def test_not_found_bodies(api: httpx.Client) -> None:
    assert api.get("/jobs/job_nope").json() == {"error": {"message": "job not found"}}
    assert api.get("/jobs/job_nope").status_code == 404
    response = api.get("/customers/cus_nope")
    assert (response.status_code, response.json()) == (404, {"error": {"message": "customer not found"}})
    response = api.get("/estimates")
    assert (response.status_code, response.json()) == (404, {"error": {"message": "Not found"}})
    assert api.delete("/jobs").json() == {"error": {"message": "Not found"}}


# ------------------------------------------------------------------ paging, sort
def test_paging_envelope(api: httpx.Client) -> None:
    seen: list[str] = []
    for page in range(1, 10):
        body = api.get("/jobs", params={"page": page, "page_size": 7}).json()
        assert (body["page"], body["page_size"], body["total_items"]) == (page, 7, 60)
        assert body["total_pages"] == math.ceil(60 / 7) == 9
        seen += ids(body["jobs"])
    assert len(seen) == len(set(seen)) == 60
    past = api.get("/jobs", params={"page": 10, "page_size": 7}).json()
    assert past["jobs"] == [] and past["total_items"] == 60
    default = api.get("/jobs").json()
    assert (default["page"], default["page_size"], len(default["jobs"])) == (1, 10, 10)


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"page_size": 201}, {"page_size": ["must be less than or equal to 200"]}),
        ({"page_size": 0}, {"page_size": ["must be greater than 0"]}),
        ({"page": "two"}, {"page": ["is not a number"]}),
        ({"sort_by": "color"}, {"sort_by": ["is invalid"]}),
        ({"sort_direction": "up"}, {"sort_direction": ["is invalid"]}),
        ({"scheduled_start_min": "tomorrow"}, {"scheduled_start_min": ["is invalid"]}),
        ({"work_status[]": "done"}, {"work_status": ["is invalid"]}),
        ({"work_status": "scheduled"}, {"work_status": "must be an array"}),
        ({"employee_ids": "pro_x"}, {"employee_ids": "must be an array"}),
        ({"expand": "attachments"}, {"expand": "must be an array"}),
        ({"location_ids": "1"}, {"location_ids": "must be an array"}),
    ],
)
def test_jobs_validation_errors(api: httpx.Client, params: dict[str, Any], errors: dict[str, Any]) -> None:
    response = api.get("/jobs", params=params)
    assert response.status_code == 422
    assert response.json() == {"errors": errors}


def test_page_size_200_is_allowed(api: httpx.Client) -> None:
    assert len(api.get("/jobs", params={"page_size": 200}).json()["jobs"]) == 60


@pytest.mark.parametrize("sort_by", ["created_at", "updated_at", "invoice_number", "id", "description", "work_status"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_orders(api: httpx.Client, sort_by: str, direction: str) -> None:
    jobs = all_jobs(api, sort_by=sort_by, sort_direction=direction)

    def key(job: dict[str, Any]) -> tuple[Any, str]:
        value = job[sort_by]
        if sort_by == "invoice_number":
            value = int(value)
        elif sort_by == "description":
            value = value.lower()
        return value, job["id"]

    assert jobs == sorted(jobs, key=key, reverse=direction == "desc")


def test_default_sort_is_created_at_desc(api: httpx.Client) -> None:
    assert ids(all_jobs(api)) == ids(all_jobs(api, sort_by="created_at", sort_direction="desc"))


# ------------------------------------------------------------------ job filters
@pytest.mark.parametrize("value", sorted(STATUS_FILTERS))
def test_work_status_filter_mapping(api: httpx.Client, value: str) -> None:
    expected = {
        "unscheduled": {"needs scheduling"},
        "scheduled": {"scheduled"},
        "in_progress": {"in progress"},
        "completed": {"complete rated", "complete unrated"},
        "canceled": {"user canceled", "pro canceled"},
    }[value]
    jobs = all_jobs(api, **{"work_status[]": value})
    assert {j["work_status"] for j in jobs} == expected
    assert len(jobs) == sum(1 for j in all_jobs(api) if j["work_status"] in expected)


def test_work_status_filter_union(api: httpx.Client) -> None:
    jobs = api.get(
        "/jobs", params=[("page_size", "200"), ("work_status[]", "completed"), ("work_status[]", "canceled")]
    )
    statuses = {j["work_status"] for j in jobs.json()["jobs"]}
    assert statuses == {"complete rated", "complete unrated", "user canceled", "pro canceled"}


def test_scheduled_range_filters(api: httpx.Client) -> None:
    everything = all_jobs(api)
    starts = sorted(j["schedule"]["scheduled_start"] for j in everything if j["schedule"].get("scheduled_start"))
    lo, hi = starts[5], starts[-5]
    jobs = all_jobs(api, scheduled_start_min=lo, scheduled_start_max=hi)
    assert jobs and all(lo <= j["schedule"]["scheduled_start"] <= hi for j in jobs)
    assert len(jobs) == sum(1 for s in starts if lo <= s <= hi)
    # without the Z (naive = UTC) and with an explicit offset: the same instant
    assert ids(all_jobs(api, scheduled_start_min=lo[:-1])) == ids(all_jobs(api, scheduled_start_min=lo))
    assert ids(all_jobs(api, scheduled_start_min=lo[:-1] + "+00:00")) == ids(all_jobs(api, scheduled_start_min=lo))
    ends = all_jobs(api, scheduled_end_max=hi)
    assert ends and all(j["schedule"]["scheduled_end"] <= hi for j in ends)
    assert all(j["schedule"]["scheduled_end"] >= lo for j in all_jobs(api, scheduled_end_min=lo))
    # any range parameter excludes unscheduled jobs
    assert all(j["schedule"]["scheduled_start"] for j in all_jobs(api, scheduled_end_min="2000-01-01"))


def test_customer_and_employee_filters(api: httpx.Client) -> None:
    everything = all_jobs(api)
    customer_id = everything[0]["customer"]["id"]
    jobs = all_jobs(api, customer_id=customer_id)
    assert ids(jobs) == [j["id"] for j in everything if j["customer"]["id"] == customer_id]
    staff = api.get("/employees", params={"page_size": 200}).json()["employees"]
    a, b = staff[1]["id"], staff[2]["id"]
    params = [("page_size", "200"), ("employee_ids[]", a), ("employee_ids[]", b)]
    jobs = api.get("/jobs", params=params).json()["jobs"]
    expected = [j["id"] for j in everything if {a, b} & {e["id"] for e in j["assigned_employees"]}]
    assert ids(jobs) == expected and expected
    assert all_jobs(api, customer_id="cus_nope") == []
    assert ids(all_jobs(api, **{"location_ids[]": "loc_1"})) == ids(everything)


def test_expand(api: httpx.Client) -> None:
    params: list[tuple[str, Any]] = [("page_size", "200"), ("expand[]", "attachments"), ("expand[]", "appointments")]
    jobs = api.get("/jobs", params=params).json()["jobs"]
    assert all(j["attachments"] == [] for j in jobs)
    scheduled = next(j for j in jobs if j["schedule"].get("scheduled_start"))
    appointment = scheduled["schedule"]["appointments"][0]
    assert appointment["start_time"] == scheduled["schedule"]["scheduled_start"]
    assert all(j["schedule"]["appointments"] == [] for j in jobs if not j["schedule"].get("scheduled_start"))
    one = api.get(f"/jobs/{scheduled['id']}", params={"expand[]": "appointments"}).json()
    assert one["schedule"]["appointments"] == scheduled["schedule"]["appointments"]
    assert "attachments" not in api.get(f"/jobs/{scheduled['id']}").json()


# -------------------------------------------------------------------- customers
def test_customers_list_and_search(api: httpx.Client) -> None:
    body = api.get("/customers", params={"page_size": 200}).json()
    assert body["total_items"] == len(body["customers"]) >= 30
    target = next(c for c in body["customers"] if c["email"] and c["addresses"])
    assert set(target) == CUSTOMER_FIELDS
    assert target["id"].startswith("cus_") and target["addresses"][0]["id"].startswith("adr_")
    assert len(target["mobile_number"]) == 10 and target["mobile_number"].isdigit()
    phone = target["mobile_number"]
    for q in (
        target["last_name"].upper(),
        f"{target['first_name']} {target['last_name']}",
        target["email"],
        f"({phone[:3]}) {phone[3:6]}-{phone[6:]}",
        target["addresses"][0]["street"].lower(),
    ):
        found = api.get("/customers", params={"q": q, "page_size": 200}).json()["customers"]
        assert target["id"] in [c["id"] for c in found], q
    assert api.get("/customers", params={"q": "zzzz-nobody"}).json()["customers"] == []
    assert api.get(f"/customers/{target['id']}").json() == target
    assert api.get("/customers", params={"expand": "attachments"}).json() == {"errors": {"expand": "must be an array"}}


def test_create_customer(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.clock(freeze=True, set="2030-04-05T06:07:08Z")
    body = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "mobile_number": "555-1234",  # not 10 digits: stored as given (the client enforces the rule)
        "tags": ["vip"],
        "lead_source": "google",
        "notifications_enabled": True,
        "addresses": [{"street": "1 Main St", "city": "Austin", "state": "TX", "zip": "78701", "country": "US"}],
    }
    response = api.post("/customers", json=body)
    assert response.status_code == 201
    created = response.json()
    assert set(created) == CUSTOMER_FIELDS
    assert created["id"].startswith("cus_")
    assert created["created_at"] == created["updated_at"] == "2030-04-05T06:07:08Z"
    assert (created["mobile_number"], created["lead_source"], created["tags"]) == ("555-1234", "Google", ["vip"])
    assert created["addresses"][0]["id"].startswith("adr_") and created["addresses"][0]["type"] == "service"
    assert api.get(f"/customers/{created['id']}").json() == created


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"first_name": "X", "lead_source": "Billboard"}, 422, {"error": {"message": "Lead source not found"}}),
        (
            {"company": "Acme", "notes": "hi"},
            422,
            {
                "errors": {
                    "base": ["One of first_name, last_name, email, mobile_number, home_number, work_number is required"]
                }
            },
        ),
        ({"first_name": "X", "tags": "vip"}, 422, {"errors": {"tags": ["must be an array of strings"]}}),
        ({"first_name": "X", "tags": [1]}, 422, {"errors": {"tags": ["must be an array of strings"]}}),
        ([{"first_name": "X"}], 400, None),
    ],
)
def test_create_customer_rules(api: httpx.Client, body: Any, status: int, expected: Any) -> None:
    response = api.post("/customers", json=body)
    assert response.status_code == status
    if expected is None:
        assert set(response.json()) == {"error"} and response.json()["error"]["message"]
    else:
        assert response.json() == expected


def test_create_customer_invalid_json(api: httpx.Client) -> None:
    response = api.post("/customers", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "message" in response.json()["error"]


def test_employees_lead_sources_job_types(api: httpx.Client) -> None:
    employees = api.get("/employees").json()
    assert employees["total_items"] == 5 and all(e["id"].startswith("pro_") for e in employees["employees"])
    assert {"first_name", "last_name", "email", "mobile_number", "color_hex", "avatar_url", "role"} <= set(
        employees["employees"][0]
    )
    sources = api.get("/lead_sources", params={"sort_direction": "asc"}).json()
    names = [s["name"] for s in sources["lead_sources"]]
    assert {"Google", "Facebook", "Referral", "Website", "Yelp"} <= set(names) and names == sorted(names)
    assert set(sources["lead_sources"][0]) == {"id", "name", "editable"}
    assert [s["name"] for s in api.get("/lead_sources", params={"q": "yel"}).json()["lead_sources"]] == ["Yelp"]
    types = api.get("/job_fields/job_types").json()
    assert "HVAC — Tune-Up" in [t["name"] for t in types["job_types"]]
    assert all(t["id"].startswith("jbt_") for t in types["job_types"])


# ----------------------------------------------------------------------- faults
def test_fault_429_with_retry_after(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.fault("status", status=429, retry_after="7", path="/jobs")
    response = api.get("/jobs")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"message": "Too Many Requests"}
    assert api.get("/jobs").status_code == 200  # times defaults to 1


def test_fault_429_without_retry_after_and_http_date(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.fault("status", status=429, path="/company")
    assert "Retry-After" not in api.get("/company").headers
    ctl.fault("status", status=429, path="/company", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    assert api.get("/company").headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_fault_5xx_not_json(api: httpx.Client, ctl: SandboxAdmin, status: int) -> None:
    ctl.fault("status", status=status, path="/jobs")
    response = api.get("/jobs")
    assert response.status_code == status
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_fault_matching_times_after_method_prefix(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.fault("status", status=500, path="/jobs", times=2, after=1)
    assert [api.get("/jobs").status_code for _ in range(4)] == [200, 500, 500, 200]
    ctl.fault("status", status=503, method="POST", path="/customers*")
    assert api.get("/customers").status_code == 200
    assert ctl.faults()[0]["kind"] == "status"
    assert api.post("/customers", json={"first_name": "Z"}).status_code == 503
    ctl.fault("status", status=502, path="/jobs", page=2)
    assert api.get("/jobs").status_code == 200
    assert api.get("/jobs", params={"page": 2}).status_code == 502
    ctl.fault("status", status=500, times=None)
    assert [api.get("/company").status_code for _ in range(3)] == [500, 500, 500]
    ctl.clear_faults()
    assert ctl.faults() == [] and api.get("/company").status_code == 200


def test_fault_validation(ctl: SandboxAdmin) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("explode", {}),
        ("status", {}),
        ("drop", {"when": "during"}),
        ("mutate", {"op": "fly"}),
        ("delay", {"seconds": -1}),
    ]
    for kind, params in cases:
        with pytest.raises(SandboxAdminError) as err:
            ctl.fault(kind, **params)
        assert err.value.status_code == 422


def test_fault_delay(server: SandboxServer, ctl: SandboxAdmin) -> None:
    ctl.fault("delay", seconds=2.0, path="/company")
    with (
        httpx.Client(base_url=server.url, headers=AUTH, timeout=httpx.Timeout(10, read=0.2)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.get("/company")
    ctl.fault("delay", seconds=0.2, path="/company")
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as patient:
        assert patient.get("/company").status_code == 200


def test_fault_drop_before(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.fault("drop", path="/jobs")
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/jobs")
    assert api.get("/jobs").status_code == 200
    assert [e["status"] for e in ctl.requests(path="/jobs")] == [None, 200]


def test_fault_drop_after_processes_request(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.fault("drop", when="after", method="POST", path="/customers")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/customers", json={"first_name": "Grace", "last_name": "Hopper-Dropped"})
    found = api.get("/customers", params={"q": "Hopper-Dropped"}).json()["customers"]
    assert [c["last_name"] for c in found] == ["Hopper-Dropped"]
    assert ctl.requests(method="POST", path="/customers")[0]["status"] is None


def test_fault_malformed(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.fault("malformed", path="/jobs")
    response = api.get("/jobs")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_fault_mutate_shifts_pages(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.clock(freeze=True)
    order = ids(all_jobs(api, sort_by="updated_at"))
    moved = order[15]
    ctl.fault("mutate", path="/jobs", page=2, op="touch", job_id=moved)
    params: dict[str, Any] = {"sort_by": "updated_at", "page_size": 10}
    assert ids(api.get("/jobs", params={**params, "page": 1}).json()["jobs"]) == order[:10]
    page2 = ids(api.get("/jobs", params={**params, "page": 2}).json()["jobs"])
    assert page2 == order[9:15] + order[16:20]  # the touched job jumped to page 1: order[9] is seen twice
    assert ids(api.get("/jobs", params={**params, "page_size": 1}).json()["jobs"]) == [moved]


def test_fault_mutate_reschedule(api: httpx.Client, ctl: SandboxAdmin) -> None:
    job = all_jobs(api, **{"work_status[]": "scheduled"})[0]
    ctl.fault(
        "mutate",
        path="/jobs/*",
        op="reschedule",
        job_id=job["id"],
        scheduled_start="2031-01-01T15:00:00Z",
        scheduled_end="2031-01-01T17:00:00Z",
    )
    seen = api.get(f"/jobs/{job['id']}").json()
    assert seen["schedule"]["scheduled_start"] == "2031-01-01T15:00:00Z"
    assert seen["work_status"] == "scheduled"


# ------------------------------------------------------------------ request log
def test_request_log(server: SandboxServer, api: httpx.Client, ctl: SandboxAdmin) -> None:
    headers = {"User-Agent": "hcp-test/1.0", "X-Company-Id": "cmp_42", "Accept": "application/json"}
    params: list[tuple[str, Any]] = [("work_status[]", "scheduled"), ("work_status[]", "completed"), ("page", "2")]
    api.get("/jobs", params=params, headers=headers)
    api.post("/customers", json={"first_name": "Log"})
    httpx.get(server.url + "/company")
    httpx.get(server.url + "/company", headers={"Authorization": "Token not-the-key-123"})
    ctl.state()  # admin requests are not logged
    log = ctl.requests()
    assert [(e["method"], e["path"], e["status"], e["auth"]) for e in log] == [
        ("GET", "/jobs", 200, "ok"),
        ("POST", "/customers", 201, "ok"),
        ("GET", "/company", 401, "missing"),
        ("GET", "/company", 401, "invalid"),
    ]
    first = log[0]
    assert set(first) == {
        *("seq", "method", "path", "query", "json", "status", "auth", "account", "headers", "received_at", "bytes")
    }
    assert [e["account"] for e in log] == ["default", "default", None, None]
    assert first["bytes"] == len(api.get("/jobs", params=params, headers=headers).content) > 0
    assert first["query"] == [["work_status[]", "scheduled"], ["work_status[]", "completed"], ["page", "2"]]
    assert first["headers"] == {
        "user-agent": "hcp-test/1.0",
        "x-company-id": "cmp_42",
        "accept": "application/json",
        "cookie": None,
    }
    assert first["json"] is None and log[1]["json"] == {"first_name": "Log"}
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)
    dumped = json.dumps(log)
    assert KEY not in dumped and "not-the-key-123" not in dumped and "authorization" not in dumped.lower()
    assert [e["path"] for e in ctl.requests(path="/company")] == ["/company", "/company"]
    assert len(ctl.requests(method="post")) == 1
    ctl.clear_requests()
    assert ctl.requests() == []
    assert KEY not in json.dumps(ctl.state()) + json.dumps(ctl.faults())


def test_faulted_requests_are_logged(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.fault("status", status=429, path="/jobs")
    ctl.fault("malformed", path="/jobs")
    api.get("/jobs")
    api.get("/jobs")
    assert [e["status"] for e in ctl.requests(path="/jobs")] == [429, 200]


# ------------------------------------------------------------ clock, operations
def test_clock_freeze_and_advance(api: httpx.Client, ctl: SandboxAdmin) -> None:
    assert ctl.clock(freeze=True, set="2030-01-02T03:04:05Z") == "2030-01-02T03:04:05Z"
    customer_id = all_jobs(api)[0]["customer"]["id"]
    job = ctl.book_job(customer_id=customer_id)
    assert job["created_at"] == job["updated_at"] == "2030-01-02T03:04:05Z"
    assert job["work_status"] == "needs scheduling" and "scheduled_start" not in job["schedule"]
    assert ctl.clock(advance_seconds=90) == "2030-01-02T03:05:35Z"
    assert ctl.touch(job["id"])["updated_at"] == "2030-01-02T03:05:35Z"
    assert api.get(f"/jobs/{job['id']}").json()["updated_at"] == "2030-01-02T03:05:35Z"
    assert ctl.clock(freeze=False) >= "2030-01-02T03:05:35Z"
    assert ctl.state()["clock_frozen"] is False
    ctl.reset()
    assert ctl.state()["now"] < "2030-01-01T00:00:00Z"


def test_updated_at_override_and_tie_break(api: httpx.Client, ctl: SandboxAdmin) -> None:
    a, b = ids(all_jobs(api))[:2]
    stamp = "2031-05-05T05:05:05Z"
    assert ctl.touch(a, updated_at=stamp)["updated_at"] == stamp
    assert ctl.edit(b, tags=["same-second"], updated_at=stamp)["updated_at"] == stamp
    newest = api.get("/jobs", params={"sort_by": "updated_at", "page_size": 2}).json()["jobs"]
    assert ids(newest) == sorted([a, b], reverse=True)
    assert {j["updated_at"] for j in newest} == {stamp}


def test_job_operations(api: httpx.Client, ctl: SandboxAdmin) -> None:
    ctl.clock(freeze=True, set="2030-06-01T12:00:00Z")
    employees = [e["id"] for e in api.get("/employees").json()["employees"]]
    customer_id = all_jobs(api)[0]["customer"]["id"]
    job = ctl.book_job(
        customer_id=customer_id,
        scheduled_start="2030-06-03T15:00:00Z",
        scheduled_end="2030-06-03T17:00:00Z",
        arrival_window=120,
        employee_ids=employees[:2],
        job_type="plumbing repair",
        tags=["priority"],
        description="Burst pipe",
        total_amount=45000,
    )
    assert job["work_status"] == "scheduled" and job["description"] == "Burst pipe"
    assert job["schedule"] == {
        "scheduled_start": "2030-06-03T15:00:00Z",
        "scheduled_end": "2030-06-03T17:00:00Z",
        "arrival_window": 120,
    }
    assert job["job_fields"]["job_type"]["name"] == "Plumbing Repair"
    assert (job["total_amount"], job["outstanding_balance"]) == (45000, 45000)
    assert [e["id"] for e in job["assigned_employees"]] == employees[:2]
    job_id = job["id"]
    moved = ctl.reschedule(job_id, scheduled_start="2030-06-04T15:00:00Z")
    assert moved["schedule"]["scheduled_end"] == "2030-06-04T17:00:00Z" and moved["work_status"] == "scheduled"
    edited = ctl.edit(job_id, notes="Bring a wet vac", tags=["priority", "after hours"], employee_ids=[])
    assert edited["notes"][-1]["content"] == "Bring a wet vac" and edited["assigned_employees"] == []
    started = ctl.start(job_id)
    assert started["work_status"] == "in progress"
    assert started["work_timestamps"]["started_at"] == started["work_timestamps"]["on_my_way_at"]
    ctl.clock(advance_seconds=3600)
    done = ctl.complete(job_id, paid=False, rated=True)
    assert done["work_status"] == "complete rated" and done["outstanding_balance"] == 45000
    assert done["work_timestamps"]["completed_at"] == done["updated_at"] == "2030-06-01T13:00:00Z"
    with pytest.raises(SandboxAdminError) as err:
        ctl.cancel(job_id)
    assert err.value.status_code == 409
    other = ctl.book_job(customer_id=customer_id)
    assert ctl.complete(other["id"])["outstanding_balance"] == 0
    third = ctl.book_job(customer_id=customer_id)
    canceled = ctl.cancel(third["id"], by="pro")
    assert canceled["work_status"] == "pro canceled" and canceled["deleted_at"] == "2030-06-01T13:00:00Z"
    fourth = ctl.cancel(ctl.book_job(customer_id=customer_id)["id"])
    assert fourth["work_status"] == "user canceled" and fourth["canceled_at"]
    with pytest.raises(SandboxAdminError) as err:
        ctl.touch("job_nope")
    assert err.value.status_code == 404
    with pytest.raises(SandboxAdminError) as err:
        ctl.edit(job_id, colour="red")
    assert err.value.status_code == 422


def test_bulk_jobs_and_admin_customer(api: httpx.Client, ctl: SandboxAdmin) -> None:
    assert ctl.bulk_jobs(450) == 450
    body = api.get("/jobs", params={"page_size": 200, "work_status[]": "scheduled"}).json()
    assert body["total_items"] >= 450 and body["total_pages"] == math.ceil(body["total_items"] / 200)
    assert ctl.state()["jobs"] == 510
    customer = ctl.create_customer(first_name="Bypass", lead_source="Billboard", updated_at="2029-01-01T00:00:00Z")
    assert customer["lead_source"] == "Billboard" and customer["updated_at"] == "2029-01-01T00:00:00Z"


def test_no_fastapi_error_shapes(server: SandboxServer, api: httpx.Client) -> None:
    for response in (
        api.get("/jobs", params={"page": "x"}),
        api.get("/jobs/"),
        api.post("/jobs"),
        api.post("/customers", json={}),
        httpx.post(server.url + "/_sandbox/jobs", json={"customer_id": 5}),
    ):
        assert response.status_code >= 400
        assert "detail" not in response.json()


# -------------------------------------------------------------------------- cli
def test_cli_sandbox_runs_in_foreground() -> None:
    command = [sys.executable, "-m", "airflow_provider_housecallpro.cli", "sandbox", "--port", "0"]
    proc = subprocess.Popen([*command, "--api-key", "cli-key"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        assert "cli-key" in proc.stdout.readline()
        response = httpx.get(url + "/company", headers={"Authorization": "Token cli-key"})
        assert response.json()["name"] == "Lone Star Home Services"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_fault_delay_after_processing(server: SandboxServer, ctl: SandboxAdmin) -> None:
    ctl.fault("delay", seconds=2.0, when="after", method="POST", path="/customers")
    with (
        httpx.Client(base_url=server.url, headers=AUTH, timeout=httpx.Timeout(10, read=0.2)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/customers", json={"first_name": "Late", "last_name": "Answer"})
    (logged,) = ctl.requests(method="POST", path="/customers")
    assert logged["status"] == 201  # it was processed; only the answer came late


def test_more_accounts_each_named_in_the_log_and_faults_scoped_to_one(server: SandboxServer, ctl: SandboxAdmin) -> None:
    ctl.add_account("acme", "acme-key-1")
    ctl.add_account("zeta", "zeta-key-2")
    assert {"acme", "default", "zeta"} <= set(ctl._call("GET", "/accounts")["accounts"])
    with pytest.raises(SandboxAdminError) as taken:
        ctl.add_account("other", "acme-key-1")
    assert taken.value.status_code == 409
    ctl.fault("status", status=302, location="/company", set_cookie="sid=acme", account="acme", times=2)
    ctl.clear_requests()
    answers = [
        httpx.get(server.url + "/company", headers={"Authorization": f"Token {key}"}).status_code
        for key in ("zeta-key-2", "acme-key-1", "zeta-key-2", "acme-key-1", "acme-key-1")
    ]
    assert answers == [200, 302, 200, 302, 200]  # only acme's requests met its fault, twice
    redirect = httpx.get(server.url + "/jobs", headers={"Authorization": "Token acme-key-1"})
    assert redirect.status_code == 200  # spent
    log = ctl.requests()
    assert [e["account"] for e in log] == ["zeta", "acme", "zeta", "acme", "acme", "acme"]
    dumped = json.dumps(log)
    assert "acme-key-1" not in dumped and "zeta-key-2" not in dumped
