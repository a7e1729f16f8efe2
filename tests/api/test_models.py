from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_housecallpro.api.errors import HousecallProInputError
from airflow_provider_housecallpro.api.models import CustomerCreate, Job, parse_page
from airflow_provider_housecallpro.api.query import JobsQuery

GOOD = {"first_name": "Ada", "last_name": "Lovelace"}


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("mobile_number", "512555123", "exactly 10 digits"),
        ("mobile_number", "51255512345", "exactly 10 digits"),
        ("mobile_number", "512-555-1234", "exactly 10 digits"),
        ("home_number", "51255512ab", "exactly 10 digits"),
        ("work_number", "(512) 5551234", "exactly 10 digits"),
        ("first_name", "   ", "must not be blank"),
        ("last_name", "", "must not be blank"),
        ("email", "ada@", "valid email"),
        ("email", "ada lovelace@example.com", "valid email"),
        ("nickname", "Ada", "not a known field"),
    ],
)
def test_customer_create_rejects_bad_input_naming_field_and_rule(field: str, value: str, rule: str) -> None:
    with pytest.raises(HousecallProInputError) as info:
        CustomerCreate.build(**{**GOOD, field: value})
    assert field in info.value.errors
    assert rule in info.value.errors[field]
    assert f"{field}:" in str(info.value)
    if "digits" in rule:
        assert "5125551234" in str(info.value)  # shows the expected form


def test_customer_create_requires_both_names() -> None:
    with pytest.raises(HousecallProInputError) as info:
        CustomerCreate.build(email="a@example.com")
    assert info.value.errors == {"first_name": "is required", "last_name": "is required"}


def test_customer_create_body_keeps_only_given_fields_and_treats_blank_optionals_as_absent() -> None:
    body = CustomerCreate.build(
        first_name=" Ada ", last_name="Lovelace", email="", mobile_number="5125551234", home_number="", tags=["vip"]
    ).to_body()
    assert body == {"first_name": "Ada", "last_name": "Lovelace", "mobile_number": "5125551234", "tags": ["vip"]}


def test_job_is_tolerant_and_round_trips_unknown_fields() -> None:
    raw = {
        "id": "job_1",
        "assigned_route_template_id": "rt_9",
        "notes": "plain string notes",
        "customer": {"id": "cus_1", "notes": None, "first_name": None},
        "schedule": {"scheduled_start": "2026-03-23T15:30:00", "scheduled_end": None},
        "work_timestamps": None,
        "outstanding_balance": 0,
        "updated_at": "2026-03-23T15:30:00Z",
    }
    job = Job.model_validate(raw)
    assert job.schedule is not None
    assert job.schedule.scheduled_start == datetime(2026, 3, 23, 15, 30, tzinfo=UTC)  # naive read as UTC
    assert job.is_paid is True
    dumped = job.model_dump(mode="json", exclude_unset=True)
    assert dumped["assigned_route_template_id"] == "rt_9"
    assert dumped["schedule"]["scheduled_start"] == "2026-03-23T15:30:00Z"
    assert Job.model_validate({"id": "j", "notes": [{"id": "n", "content": "x"}]}).notes[0].content == "x"  # type: ignore[index,union-attr]


def test_parse_page_reads_envelope() -> None:
    page = parse_page(
        {"page": 2, "page_size": 10, "total_pages": 3, "total_items": 25, "jobs": [{"id": "job_1"}]}, "jobs", Job
    )
    assert (page.page, page.total_pages, page.next_page, page.items[0].id) == (2, 3, 3, "job_1")


def test_jobs_query_encodes_arrays_with_literal_brackets_and_spec_names() -> None:
    q = JobsQuery(
        work_status=["scheduled", "in_progress"],
        employee_ids="pro_1",
        scheduled_start_min="2026-03-23T15:30:00",
        sort_by="updated_at",
        sort_direction="desc",
        page_size=50,
    )
    assert q.to_params() == [
        ("page", "1"),
        ("page_size", "50"),
        ("scheduled_start_min", "2026-03-23T15:30:00Z"),
        ("employee_ids[]", "pro_1"),
        ("work_status[]", "scheduled"),
        ("work_status[]", "in_progress"),
        ("sort_by", "updated_at"),
        ("sort_direction", "desc"),
    ]


def test_jobs_query_explains_response_status_used_as_filter() -> None:
    with pytest.raises(ValueError, match="filter with 'completed'"):
        JobsQuery(work_status=["complete rated"])
