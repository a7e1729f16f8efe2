"""CreateCustomerOperator without a network: arguments, input coercion, validation, dry run, matching."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_housecallpro.api.errors import HousecallProInputError
from airflow_provider_housecallpro.api.models import Customer
from airflow_provider_housecallpro.operators import CreateCustomerOperator
from airflow_provider_housecallpro.operators.customers import (
    AmbiguousCreateError,
    CustomerExistsError,
    CustomerInputError,
    same_customer,
)


def operator(**kwargs: Any) -> CreateCustomerOperator:
    return CreateCustomerOperator(task_id="create_customer", **{"first_name": "Ann", "last_name": "Lee", **kwargs})


class FakeTI:
    def __init__(self) -> None:
        self.try_number = 1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def test_every_input_is_templated() -> None:
    params = set(inspect.signature(CreateCustomerOperator.__init__).parameters) - {"self", "kwargs"}
    fields = set(CreateCustomerOperator.template_fields)
    assert params - {"dry_run"} <= fields and "dry_run_enabled" in fields  # dry_run() is a BaseOperator method
    assert CreateCustomerOperator.template_fields_renderers["address"] == "json"
    assert CreateCustomerOperator.ui_color


def test_defaults() -> None:
    op = operator()
    assert (op.housecallpro_conn_id, op.if_exists, op.dry_run_enabled) == (
        "housecallpro_default",
        "return_existing",
        False,
    )


def test_unknown_if_exists_fails_at_parse_time_but_a_template_is_checked_after_rendering() -> None:
    with pytest.raises(CustomerInputError, match="if_exists: must be one of"):
        operator(if_exists="upsert")
    operator(if_exists="{{ params.mode }}")  # rendered later; checked in execute()


def test_string_rendered_values_are_coerced() -> None:
    payload = operator(
        tags="['vip', 'web form']",
        notifications_enabled="True",
        address="{'street': '1 Main St', 'zip': '78701'}",
        addresses='[{"city": "Austin"}]',
        mobile_number=5125551234,
    ).build_payload()
    assert payload.tags == ["vip", "web form"]
    assert payload.notifications_enabled is True
    assert payload.addresses and [a.street for a in payload.addresses] == ["1 Main St", None]
    assert payload.addresses[1].city == "Austin"
    assert payload.mobile_number == "5125551234"
    assert operator(tags="vip, web").build_payload().tags == ["vip", "web"]


def test_blank_optional_fields_are_not_sent() -> None:
    blank = {key: "" for key in ("email_address", "company", "mobile_number", "home_number", "work_number", "notes")}
    payload = operator(**blank, tags="", lead_source=" ", notifications_enabled="", address="", addresses="")
    assert payload.build_payload().to_body() == {"first_name": "Ann", "last_name": "Lee"}


def test_every_bad_field_is_named_in_one_error() -> None:
    op = operator(
        first_name=" ", email_address="nope", home_number="512-555-1234", notifications_enabled="maybe", tags=3
    )
    with pytest.raises(CustomerInputError) as info:
        op.build_payload()
    assert set(info.value.errors) == {"first_name", "email_address", "home_number", "notifications_enabled", "tags"}
    assert "No request was sent to Housecall Pro" in str(info.value)


def test_customer_email_is_not_the_operators_alert_email() -> None:
    from airflow.sdk import DAG

    with DAG("d", default_args={"email": ["ops@example.com"]}, schedule=None):
        op = operator(email_address="ann@example.com")
    assert op.email_address == "ann@example.com"
    assert op.email == ["ops@example.com"]  # default_args' alert address stays where Airflow expects it
    assert op.build_payload().email == "ann@example.com"


def test_errors_fail_the_task_without_retries() -> None:
    for error in (CustomerInputError("x"), CustomerExistsError("x", "cus_1"), AmbiguousCreateError("x")):
        assert isinstance(error, AirflowFailException)
    assert isinstance(CustomerInputError("x"), HousecallProInputError)


def test_dry_run_returns_a_stable_fake_id_and_pushes_the_body() -> None:
    first, second, other = FakeTI(), FakeTI(), FakeTI()
    fake_id = operator(email_address="ann@example.com", dry_run=True).execute({"ti": first})  # type: ignore[arg-type]
    again = operator(email_address="ann@example.com", dry_run="true").execute({"ti": second})  # type: ignore[arg-type]
    different = operator(email_address="bob@example.com", dry_run=True).execute({"ti": other})  # type: ignore[arg-type]
    assert fake_id.startswith("cus_dryrun_") and fake_id == again != different
    assert first.xcoms["customer"] == {
        "id": fake_id,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "dry_run": True,
    }


def test_same_customer_compares_every_given_identifying_field_normalized() -> None:
    payload = operator(email_address="Ann@Example.com", mobile_number="5125551234", company="ACME").build_payload()
    base = {"id": "cus_1", "first_name": "ann", "last_name": "LEE", "company": "Acme", "notes": "other"}
    assert same_customer(Customer(**base, email="ann@example.com", mobile_number="(512) 555-1234"), payload)
    assert not same_customer(Customer(**base, email="ann@example.com", mobile_number="5125550000"), payload)
    assert not same_customer(Customer(**{**base, "first_name": "Bob"}, email="ann@example.com"), payload)
    assert not same_customer(Customer(**base, mobile_number="5125551234"), payload)  # email missing
