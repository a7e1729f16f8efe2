"""Input rules under arbitrary Unicode: what passes is exactly what the rule allows and exactly what is sent;
what fails is a HousecallProInputError naming the field, raised before any request."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_housecallpro.api.client import HousecallProClient
from airflow_provider_housecallpro.api.core import ClientConfig
from airflow_provider_housecallpro.api.errors import HousecallProConfigError, HousecallProInputError
from airflow_provider_housecallpro.api.models import CustomerCreate, Job, tolerant_validate
from airflow_provider_housecallpro.api.operations import create_customer
from airflow_provider_housecallpro.events.filters import JobFilter

texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("0123456789 \t\n\x00\u00a0"),
    max_size=40,
)
FILTER_KEYS = [
    "customer_ids",
    "job_types",
    "tags_any",
    "tags_all",
    "employees",
    "customer_phones",
    "work_statuses",
    "x",
]
digits_any_script = st.text(alphabet=st.characters(categories=("Nd",)), min_size=10, max_size=10)


# Unicode White_Space: what pydantic's str_strip_whitespace trims (Python's str.strip also trims \x1c-\x1f).
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)


def _trim(text: str) -> str:
    return text.strip(WHITE_SPACE)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text)


@settings(max_examples=400, deadline=None)
@given(value=texts | digits_any_script)
def test_phone_passes_exactly_ten_ascii_digits(value: str) -> None:
    try:
        customer = CustomerCreate.build(first_name="Ann", last_name="Lee", mobile_number=value)
    except HousecallProInputError as exc:
        assert "mobile_number" in str(exc)
        assert value.strip() and not re.fullmatch(r"[0-9]{10}", value)
        return
    if not value.strip():
        assert "mobile_number" not in customer.to_body()
    else:
        assert re.fullmatch(r"[0-9]{10}", value)
        assert customer.to_body()["mobile_number"] == value


@settings(max_examples=400, deadline=None)
@given(value=texts)
def test_names_pass_when_not_blank_and_free_of_control_characters(value: str) -> None:
    try:
        customer = CustomerCreate.build(first_name=value, last_name="Lee")
    except HousecallProInputError as exc:
        assert "first_name" in str(exc)
        assert not _trim(value) or _has_control(_trim(value))
        return
    assert _trim(value) and not _has_control(_trim(value))
    assert customer.to_body()["first_name"] == _trim(value)


@settings(max_examples=400, deadline=None)
@given(value=texts | st.emails())
def test_email_passes_only_when_well_formed(value: str) -> None:
    try:
        customer = CustomerCreate.build(first_name="Ann", last_name="Lee", email=value)
    except HousecallProInputError as exc:
        assert "email" in str(exc)
        return
    sent = customer.to_body().get("email")
    if not value.strip():  # blank by Python's notion (which includes \x1c-\x1f): "not given"
        assert sent is None
    else:
        assert sent == _trim(value) and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s.]+", sent) and not _has_control(sent)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["first_name", "last_name", "email", "mobile_number", "home_number", "lead_source", "tags"]),
        texts | st.lists(texts, max_size=3) | st.integers() | st.none(),
    )
)
def test_a_rejected_customer_makes_no_request(fields: dict[str, Any]) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"id": "cus_1"})

    client = HousecallProClient(
        ClientConfig(api_key="k", base_url="https://example.invalid"), transport=httpx.MockTransport(answer)
    )
    try:
        body = CustomerCreate.build(**fields)
    except HousecallProInputError as exc:
        assert any(name in str(exc) for name in fields) or "first_name" in str(exc) or "last_name" in str(exc)
        assert sent == []
        return
    client.call(create_customer(body))
    assert len(sent) == 1


@settings(max_examples=300, deadline=None)
@given(
    spec=st.dictionaries(
        st.sampled_from(
            [
                "customer_ids",
                "job_types",
                "tags_any",
                "tags_all",
                "employees",
                "customer_phones",
                "work_statuses",
                "bogus",
            ]
        ),
        texts | st.lists(texts, max_size=3) | st.integers() | st.none(),
    ),
    job=st.fixed_dictionaries(
        {"id": st.just("job_1")},
        optional={
            "tags": st.lists(texts, max_size=3) | texts,
            "work_status": texts,
            "customer": st.none()
            | st.fixed_dictionaries({}, optional={"id": texts, "mobile_number": texts | st.none()}),
            "assigned_employees": st.lists(st.fixed_dictionaries({}, optional={"id": texts, "email": texts})),
        },
    ),
)
def test_filters_either_parse_or_name_the_problem_and_never_crash_matching(
    spec: dict[str, Any], job: dict[str, Any]
) -> None:
    try:
        job_filter = JobFilter.parse(spec)
    except HousecallProInputError:
        return
    parsed, _dropped = tolerant_validate(Job, job)
    assert job_filter.matches(parsed) in (True, False)


def test_plain_http_only_on_loopback() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost", "http://[::1]:9"):
        ClientConfig(api_key="k", base_url=url)
    for url in ("http://api.housecallpro.com", "http://10.0.0.5", "http://example.com:80"):
        with pytest.raises(HousecallProConfigError, match="must use https"):
            ClientConfig(api_key="k", base_url=url)


def test_a_redirect_is_not_followed_so_the_key_never_reaches_another_host() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.host} {request.headers.get('Authorization')}")
        return httpx.Response(302, headers={"Location": "https://evil.example/steal"})

    client = HousecallProClient(
        ClientConfig(api_key="secret-k", base_url="https://api.example"), transport=httpx.MockTransport(answer)
    )
    with pytest.raises(Exception, match="302"):
        client.call(create_customer(CustomerCreate.build(first_name="A", last_name="B")))
    assert seen == ["api.example Token secret-k"]
