"""The hook against a live sandbox over loopback: paging, filters on the wire, lookups, creation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from airflow_provider_housecallpro.api.errors import HousecallProInputError, HousecallProNotFoundError
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin


def test_company(hook: HousecallProHook) -> None:
    company = hook.get_company()
    assert company.name and company.time_zone


def test_iter_jobs_pages_through_every_page(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    first = hook.list_jobs(page_size=10)
    assert first.total_pages >= 4  # 60 seeded jobs at 10 a page
    admin.clear_requests()
    jobs = list(hook.iter_jobs(page_size=10))
    pages = [dict(r["query"])["page"] for r in admin.requests(path="/jobs")]
    assert pages == [str(n) for n in range(1, first.total_pages + 1)]
    assert len({j.id for j in jobs}) == len(jobs) == first.total_items


async def test_async_iter_jobs_pages_the_same(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    sync_ids = [j.id for j in hook.iter_jobs(page_size=10, sort_by="id", sort_direction="asc")]
    admin.clear_requests()
    async_ids = [j.id async for j in hook.aiter_jobs(page_size=10, sort_by="id", sort_direction="asc")]
    assert async_ids == sync_ids
    assert len(admin.requests(path="/jobs")) >= 4


def test_every_jobs_filter_reaches_the_server_with_the_spec_names(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    hook.list_jobs(
        scheduled_start_min=datetime(2026, 3, 1, tzinfo=UTC),
        scheduled_start_max="2026-03-31T23:59:59Z",
        scheduled_end_min="2026-03-01T00:00:00",
        scheduled_end_max=datetime(2026, 4, 1),
        employee_ids=["pro_a", "pro_b"],
        customer_id="cus_x",
        work_status=["scheduled", "completed"],
        sort_by="updated_at",
        sort_direction="asc",
        location_ids=["loc_1"],
        expand=["appointments", "attachments"],
        page=2,
        page_size=25,
    )
    (req,) = admin.requests(path="/jobs")
    assert req["status"] == 200
    assert sorted((k, unquote(v)) for k, v in req["query"]) == sorted(
        [
            ("scheduled_start_min", "2026-03-01T00:00:00Z"),
            ("scheduled_start_max", "2026-03-31T23:59:59Z"),
            ("scheduled_end_min", "2026-03-01T00:00:00Z"),
            ("scheduled_end_max", "2026-04-01T00:00:00Z"),
            ("employee_ids[]", "pro_a"),
            ("employee_ids[]", "pro_b"),
            ("customer_id", "cus_x"),
            ("work_status[]", "scheduled"),
            ("work_status[]", "completed"),
            ("sort_by", "updated_at"),
            ("sort_direction", "asc"),
            ("location_ids[]", "loc_1"),
            ("expand[]", "appointments"),
            ("expand[]", "attachments"),
            ("page", "2"),
            ("page_size", "25"),
        ]
    )


def test_filters_select_the_right_jobs(hook: HousecallProHook) -> None:
    completed = list(hook.iter_jobs(work_status="completed"))
    assert completed and {j.work_status for j in completed} <= {"complete rated", "complete unrated"}
    some = completed[0]
    assert some.customer is not None
    mine = list(hook.iter_jobs(customer_id=some.customer.id))
    assert mine and all(j.customer and j.customer.id == some.customer.id for j in mine)
    staffed = next(j for j in hook.iter_jobs() if j.assigned_employees)
    pro = staffed.assigned_employees[0].id  # type: ignore[index]
    assert all(pro in {e.id for e in j.assigned_employees or []} for j in hook.iter_jobs(employee_ids=[pro]))


def test_bad_filter_is_rejected_before_any_request(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    with pytest.raises(HousecallProInputError, match="work_status"):
        hook.list_jobs(work_status="done")
    with pytest.raises(HousecallProInputError, match="page_size"):
        hook.list_jobs(page_size=500)
    assert admin.requests() == []


def test_get_job_and_not_found(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    job = next(iter(hook.iter_jobs(max_pages=1)))
    assert hook.get_job(job.id).id == job.id
    with pytest.raises(HousecallProNotFoundError, match="404") as info:
        hook.get_job("job_does_not_exist")
    assert info.value.status == 404 and info.value.api_message == "job not found"


def test_find_customer_exact_match_by_email_then_phone(hook: HousecallProHook) -> None:
    someone = next(c for c in hook.iter_customers() if c.email and c.mobile_number)
    assert hook.find_customer(email=someone.email.upper()).id == someone.id  # type: ignore[union-attr]
    assert hook.find_customer(email="nobody@nowhere.example", mobile_number=someone.mobile_number).id == someone.id  # type: ignore[union-attr]
    # fuzzy q would match a prefix; the exact lookup must not
    assert hook.find_customer(email=someone.email[:-1]) is None  # type: ignore[index]


@pytest.mark.parametrize("by", ["email", "phone", "both", "neither", "email_misses"])
def test_sync_and_async_customer_lookups_send_the_same_requests_and_agree(
    hook: HousecallProHook, admin: SandboxAdmin, by: str
) -> None:
    """One lookup (api/matching.lookup) drives both paths: same searches, same answer."""
    someone = next(c for c in hook.iter_customers() if c.email and c.mobile_number)
    email = {"email": someone.email, "both": someone.email, "email_misses": "nobody@nowhere.example"}.get(by)
    phone = someone.mobile_number if by in ("phone", "both", "email_misses") else None
    outcomes = []
    for lookup in (
        lambda: hook.find_customer(email=email, mobile_number=phone),
        lambda: asyncio.run(hook.afind_customer(email=email, mobile_number=phone)),
        lambda: hook.find_customer_matches(email=email, mobile_number=phone),
        lambda: asyncio.run(hook.afind_customer_matches(email=email, mobile_number=phone)),
    ):
        admin.clear_requests()
        found = lookup()
        outcomes.append((found, [r["query"] for r in admin.requests(path="/customers")]))
    (sync, sync_q), (async_, async_q), (groups, groups_q), (agroups, agroups_q) = outcomes
    assert sync == async_ and sync_q == async_q
    assert groups == agroups and groups_q == agroups_q
    assert (sync.id if sync else None) == (None if by == "neither" else someone.id)
    assert len(sync_q) == (0 if by == "neither" else 1 if by != "email_misses" else 2)  # stops at a hit


async def test_async_customer_round_trip(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    created = await hook.acreate_customer(
        {
            "first_name": "Async",
            "last_name": "Tester",
            "email": "async.tester@example.com",
            "mobile_number": "5125550001",
        }
    )
    fetched = await hook.aget_customer(created.id)
    assert (fetched.first_name, fetched.email, fetched.mobile_number) == (
        "Async",
        "async.tester@example.com",
        "5125550001",
    )
    assert (await hook.afind_customer(email="ASYNC.tester@example.com")).id == created.id  # type: ignore[union-attr]


def test_create_customer_sends_every_field(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    lead = hook.list_lead_sources()[0].name
    created = hook.create_customer(
        {
            "first_name": "Grace",
            "last_name": "Hopper",
            "email": "grace@example.com",
            "company": "Navy",
            "mobile_number": "5125551234",
            "home_number": "5125554321",
            "work_number": "5125559999",
            "notifications_enabled": False,
            "tags": ["vip", "web-form"],
            "lead_source": lead,
            "notes": "prefers mornings",
            "addresses": [{"street": "1 Main St", "city": "Austin", "state": "TX", "zip": "78701"}],
        }
    )
    got = hook.get_customer(created.id)
    assert (got.first_name, got.last_name, got.email, got.company) == ("Grace", "Hopper", "grace@example.com", "Navy")
    assert (got.mobile_number, got.home_number, got.work_number) == ("5125551234", "5125554321", "5125559999")
    assert got.tags == ["vip", "web-form"] and got.lead_source == lead and got.notifications_enabled is False
    assert got.addresses and got.addresses[0].street == "1 Main St"


@pytest.mark.parametrize(
    "bad",
    [
        {"mobile_number": "512555123"},
        {"mobile_number": "51255512345"},
        {"mobile_number": "512-555-1234"},
        {"home_number": "512555abcd"},
        {"first_name": "  "},
        {"last_name": ""},
        {"email": "not-an-email"},
    ],
)
def test_bad_customer_input_fails_before_any_request(
    hook: HousecallProHook, admin: SandboxAdmin, bad: dict[str, str]
) -> None:
    (field,) = bad
    with pytest.raises(HousecallProInputError) as info:
        hook.create_customer({"first_name": "Ada", "last_name": "Lovelace", **bad})
    assert field in info.value.errors
    assert admin.requests() == []


def _twins() -> list[str]:
    """Every public sync method of the hook that talks to Housecall Pro (it has an ``a…`` twin)."""
    names = [n for n in vars(HousecallProHook) if not n.startswith("_") and callable(getattr(HousecallProHook, n))]
    # get_conn / aget_conn hand out the sync / async client itself (a client, an async context manager)
    return sorted(n for n in names if f"a{n}" in names and n != "get_conn")


def test_every_api_method_has_an_async_twin() -> None:
    # Airflow's own hook API (connection, form, test) and the async-only trigger poller have no twin.
    airflow_side = {"get_connection_form_widgets", "get_ui_field_behaviour", "close", "test_connection", "get_conn"}
    names = {n for n in vars(HousecallProHook) if not n.startswith("_") and callable(getattr(HousecallProHook, n))}
    sync = {n for n in names if not n.startswith("a") or n[1:] not in names} - {"ajob_event_poller"}
    assert sync - airflow_side - set(_twins()) == set(), "a sync API method without an async twin"


@pytest.mark.parametrize("name", _twins())
def test_sync_and_async_twins_send_the_same_requests_and_return_the_same(
    name: str, hook: HousecallProHook, admin: SandboxAdmin
) -> None:
    """``duplicates`` in test form: each pair shares one core (api/operations, poll plans, matching), so the
    requests on the wire and the answers are identical. A POST creates a new record each time: its requests and
    the created customer's fields are compared, not its id."""
    from airflow_provider_housecallpro.events.detector import SCHEDULED
    from airflow_provider_housecallpro.events.poll import find_plan
    from airflow_provider_housecallpro.options import detector_settings

    job = next(iter(hook.iter_jobs(max_pages=1)))
    someone = next(c for c in hook.iter_customers() if c.email and c.mobile_number)
    args: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
        "get_job": ((job.id,), {}),
        "get_job_line_items": ((job.id,), {}),
        "get_customer": ((someone.id,), {}),
        "find_customer": ((), {"email": someone.email, "mobile_number": someone.mobile_number}),
        "find_customer_matches": ((), {"email": someone.email, "mobile_number": someone.mobile_number}),
        "create_customer": (({"first_name": "Twin", "last_name": "Check", "mobile_number": "5125550142"},), {}),
        "list_jobs": ((), {"page_size": 5, "work_status": ["scheduled"]}),
        "iter_jobs": ((), {"max_pages": 2, "page_size": 7}),
        "iter_job_pages": ((), {"max_pages": 2, "page_size": 7}),
        "list_customers": ((), {"q": "a"}),
        "iter_customers": ((), {"max_pages": 2, "page_size": 5}),
    }
    positional, keywords = args.get(name, ((), {}))

    def plan_args() -> tuple[Any, ...]:
        now = datetime(2030, 1, 1, tzinfo=UTC)
        return (find_plan(detector_settings(SCHEDULED, {}, {}), now),) if name == "poll_job_events" else positional

    async def run_async() -> Any:
        result = getattr(hook, f"a{name}")(*plan_args(), **keywords)
        if hasattr(result, "__aiter__"):
            return [item async for item in result]
        return await result

    def run_sync() -> Any:
        result = getattr(hook, name)(*plan_args(), **keywords)
        return list(result) if isinstance(result, Iterator) else result

    def comparable(value: Any) -> Any:
        if isinstance(value, list):
            return [comparable(v) for v in value]
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        if name == "create_customer" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("id", "created_at", "updated_at")}
        return value.__dict__ if hasattr(value, "events") else value

    seen = []
    for run in (run_sync, lambda: asyncio.run(run_async())):
        admin.clear_requests()
        result = run()
        wire = [(r["method"], r["path"], r["query"]) for r in admin.requests()]
        seen.append((comparable(result), wire))
    (sync_result, sync_wire), (async_result, async_wire) = seen
    assert sync_wire == async_wire and (sync_wire or name == "get_client_config")
    assert sync_result == async_result
