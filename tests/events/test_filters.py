"""JobFilter.matches, dimension by dimension, without a sandbox: each row is one filter, one job it must match and
one it must not (the expected answers are written out here, not derived from the filter's code)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_housecallpro.api.models import Job
from airflow_provider_housecallpro.events.filters import JobFilter


def job(**fields: Any) -> Job:
    base: dict[str, Any] = {
        "id": "job_1",
        "work_status": "scheduled",
        "tags": ["Priority", "Repeat"],
        "customer": {
            "id": "cus_ann",
            "first_name": "Ann",
            "last_name": "Lee",
            "company": "Lee Bakery",
            "email": "Ann.Lee@Example.com",
            "mobile_number": "(512) 555-0101",
            "tags": ["VIP"],
        },
        "job_fields": {
            "job_type": {"id": "jt_hvac", "name": "HVAC — Tune-Up"},
            "business_unit": {"id": "bu_south", "name": "South"},
        },
        "assigned_employees": [{"id": "pro_bo", "first_name": "Bo", "last_name": "Diaz", "email": "bo@x.example"}],
    }
    base.update(fields)
    return Job.model_validate(base)


OTHER = job(
    id="job_2",
    work_status="complete rated",
    tags=["Other"],
    customer={"id": "cus_cy", "first_name": "Cy", "last_name": "Moe", "email": "cy@example.com", "tags": []},
    job_fields={"job_type": {"id": "jt_plumb", "name": "Plumbing"}, "business_unit": None},
    assigned_employees=[],
)


@pytest.mark.parametrize(
    "filters",
    [
        {"customer_ids": ["cus_ann"]},
        {"customer_emails": ["ann.lee@example.COM"]},
        {"customer_phones": ["+1 512 555 0101"]},
        {"customer_names": ["ann lee"]},
        {"customer_names": ["bakery"]},
        {"customer_tags": ["vip"]},
        {"job_types": ["hvac — tune-up"]},
        {"job_types": ["jt_hvac", "jt_other"]},
        {"business_units": ["South"]},
        {"tags_any": ["priority", "nope"]},
        {"tags_all": ["priority", "repeat"]},
        {"employees": ["pro_bo"]},
        {"employees": ["BO@x.example"]},
        {"employees": ["bo diaz"]},
        {"work_statuses": ["scheduled"]},
        {"customer_ids": ["cus_ann"], "tags_any": ["Repeat"], "job_types": ["jt_hvac"]},
    ],
)
def test_each_dimension_matches_its_job_and_not_the_other(filters: dict[str, Any]) -> None:
    parsed = JobFilter.parse(filters)
    assert parsed.matches(job())
    assert not parsed.matches(OTHER)


@pytest.mark.parametrize(
    "filters",
    [
        {"tags_all": ["priority", "missing"]},  # all, not any
        {"customer_ids": ["cus_ann"], "tags_any": ["Other"]},  # every set dimension must hold
        {"customer_names": ["annie"]},
        {"customer_phones": ["5125550102"]},
    ],
)
def test_a_filter_that_fails_one_condition_does_not_match(filters: dict[str, Any]) -> None:
    assert not JobFilter.parse(filters).matches(job())


def test_an_empty_filter_matches_everything_even_a_job_without_customer_or_fields() -> None:
    bare = job(customer=None, job_fields=None, assigned_employees=None, tags=None)
    assert JobFilter.parse(None).matches(bare) and JobFilter.parse({}).matches(OTHER)
    assert not JobFilter.parse({"customer_ids": ["cus_ann"]}).matches(bare)
    assert not JobFilter.parse({"job_types": ["jt_hvac"]}).matches(bare)
