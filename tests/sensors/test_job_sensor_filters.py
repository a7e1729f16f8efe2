"""Each JobFilter dimension admits the matching job and excludes the other, in poke and deferred mode."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from tests.support.jobs import ids, slot
from tests.support.sensor_harness import SensorHarness

# (filter, which of the two booked jobs it must admit: "match" or "none")
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("customer id", {"customer_ids": ["{match_customer}"]}, "match"),
    ("customer email, any case", {"customer_emails": ["FIONA.FILTER@example.com"]}, "match"),
    ("customer phone, any formatting", {"customer_phones": ["(512) 555-0101"]}, "match"),
    ("customer name", {"customer_names": ["fiona"]}, "match"),
    ("customer tag", {"customer_tags": ["vip"]}, "match"),
    ("job type by name", {"job_types": ["plumbing repair"]}, "match"),
    ("job type by id", {"job_types": ["{match_job_type_id}"]}, "match"),
    ("tags any", {"tags_any": ["urgent", "nope"]}, "match"),
    ("tags all", {"tags_all": ["urgent", "warranty"]}, "match"),
    ("employee by id", {"employees": ["{match_employee_id}"]}, "match"),
    ("employee by email", {"employees": ["{match_employee_email}"]}, "match"),
    ("employee by name", {"employees": ["{match_employee_name}"]}, "match"),
    ("business unit", {"business_units": ["Commercial"]}, "match"),
    ("work status", {"work_statuses": ["scheduled"], "customer_ids": ["{match_customer}"]}, "match"),
    (
        "all dimensions at once",
        {"customer_tags": ["vip"], "tags_all": ["urgent"], "job_types": ["Plumbing Repair"]},
        "match",
    ),
    ("no job qualifies", {"tags_all": ["urgent", "no-such-tag"]}, "none"),
]


@pytest.fixture
def world(hook: HousecallProHook, admin: SandboxAdmin) -> dict[str, Any]:
    fiona = admin.create_customer(
        first_name="Fiona",
        last_name="Filter",
        email="fiona.filter@example.com",
        mobile_number="5125550101",
        tags=["vip"],
    )
    other = admin.create_customer(
        first_name="Oscar", last_name="Other", email="oscar@example.com", mobile_number="5125550202"
    )
    e1, e2 = hook.list_employees()[:2]
    return {"fiona": fiona, "other": other, "e1": e1, "e2": e2}


def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return value.format(**names) if isinstance(value, str) else value


@pytest.mark.parametrize("mode", ["poke", "deferred"])
@pytest.mark.parametrize(("case", "filters", "expect"), CASES, ids=[c[0] for c in CASES])
def test_filter_dimension(
    mode: str,
    case: str,
    filters: dict[str, Any],
    expect: str,
    world: dict[str, Any],
    admin: SandboxAdmin,
    connection: str,
) -> None:
    job: dict[str, Any] = {}

    def book_both() -> None:
        job["match"] = admin.book_job(
            customer_id=world["fiona"]["id"],
            job_type="Plumbing Repair",
            business_unit="Commercial",
            tags=["warranty", "urgent"],
            employee_ids=[world["e1"].id],
            **slot(2),
        )
        job["other"] = admin.book_job(
            customer_id=world["other"]["id"],
            job_type="Gutter Cleaning",
            business_unit="Residential",
            tags=["warranty"],
            employee_ids=[world["e2"].id],
            **slot(3),
        )

    names = {
        "match_customer": world["fiona"]["id"],
        "match_employee_id": world["e1"].id,
        "match_employee_email": world["e1"].email,
        "match_employee_name": world["e1"].display_name,
        "match_job_type_id": next(t["id"] for t in _job_types(connection) if t["name"] == "Plumbing Repair"),
    }
    h = SensorHarness("scheduled", mode, connection, filters=fill(filters, names))
    h.baseline()
    events = h.detect(book_both)
    assert ids(events) == ([job["match"]["id"]] if expect == "match" else [])


def _job_types(connection: str) -> list[dict[str, Any]]:
    from airflow_provider_housecallpro.api import operations as ops

    hook = HousecallProHook(connection)
    return [t.model_dump() for t in hook.get_conn().call(ops.list_job_types()).items]
