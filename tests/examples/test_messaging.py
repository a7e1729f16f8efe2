"""Messaging helpers without I/O: local schedule windows, money, phone numbers, the SMS request, email HTML."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hcp_messaging import (
    format_local_time,
    format_money,
    format_phone,
    format_window,
    job_title,
    person_name,
    street_address,
    text_to_html,
    to_e164,
)
from hcp_messaging.mail import mask_email
from hcp_messaging.sinks import html_to_text
from hcp_messaging.sms import (
    SmsRejectedError,
    config_from_connection,
    mask_number,
)

CHICAGO = "America/Chicago"


def window(start: str, end: str | None = None, zone: str = CHICAGO) -> str:
    return format_window({"scheduled_start": start, "scheduled_end": end}, zone)


@pytest.mark.parametrize(
    ("start", "end", "zone", "expected"),
    [
        # winter: UTC-6, CST
        ("2026-12-01T15:00:00Z", "2026-12-01T17:00:00Z", CHICAGO, "Tue Dec 1, 9:00\u201311:00 AM CST"),
        ("2026-12-01T17:30:00Z", "2026-12-01T19:30:00Z", CHICAGO, "Tue Dec 1, 11:30 AM\u20131:30 PM CST"),
        ("2026-12-01T18:00:00Z", "2026-12-01T20:00:00Z", CHICAGO, "Tue Dec 1, 12:00\u20132:00 PM CST"),
        # summer: UTC-5, CDT — the same UTC time is an hour later on the customer's clock
        ("2026-07-07T15:00:00Z", "2026-07-07T17:00:00Z", CHICAGO, "Tue Jul 7, 10:00 AM\u201312:00 PM CDT"),
        # across midnight, local
        ("2026-12-02T04:00:00Z", "2026-12-02T07:00:00Z", CHICAGO, "Tue Dec 1, 10:00 PM \u2013 Wed Dec 2, 1:00 AM CST"),
        # another company, another zone; offsets other than Z
        (
            "2026-12-01T09:00:00+01:00",
            "2026-12-01T10:00:00+01:00",
            "America/New_York",
            "Tue Dec 1, 3:00\u20134:00 AM EST",
        ),
        ("2026-12-01T15:00:00Z", None, CHICAGO, "Tue Dec 1, 9:00 AM CST"),
        ("2026-12-01T15:00:00", None, "UTC", "Tue Dec 1, 3:00 PM UTC"),  # naive means UTC
    ],
)
def test_format_window_in_the_company_time_zone(start: str, end: str | None, zone: str, expected: str) -> None:
    assert window(start, end, zone) == expected


def test_format_window_without_a_schedule() -> None:
    assert format_window(None, CHICAGO) == "not scheduled"
    assert format_window({"scheduled_start": None}, CHICAGO) == "not scheduled"


def test_format_local_time() -> None:
    assert format_local_time("2026-03-08T08:30:00Z", CHICAGO) == "Sun Mar 8, 3:30 AM CDT"  # DST started at 2 AM


@pytest.mark.parametrize(
    ("cents", "text"),
    [(16500, "$165.00"), (0, "$0.00"), (None, "$0.00"), (5, "$0.05"), (123456789, "$1,234,567.89"), (-250, "-$2.50")],
)
def test_format_money(cents: int | None, text: str) -> None:
    assert format_money(cents) == text


@pytest.mark.parametrize(
    ("number", "shown"),
    [("5125550100", "(512) 555-0100"), ("15125550100", "(512) 555-0100"), ("+44 20 7946 0958", "+44 20 7946 0958")],
)
def test_format_phone(number: str, shown: str) -> None:
    assert format_phone(number) == shown
    assert format_phone(None) == ""


def test_job_and_people_helpers() -> None:
    job: dict[str, Any] = {"description": "Leaking faucet", "job_fields": {"job_type": {"name": "Plumbing Repair"}}}
    assert job_title(job) == "Plumbing Repair"
    assert job_title({"description": "Leaking faucet", "job_fields": {"job_type": None}}) == "Leaking faucet"
    assert job_title({}) == "service visit"
    assert street_address(
        {"street": "1 Main St", "street_line_2": None, "city": "Austin", "state": "TX", "zip": "78701"}
    ) == ("1 Main St, Austin, TX 78701")
    assert street_address(None) == ""
    assert person_name({"first_name": "Ava", "last_name": None}) == "Ava"
    assert person_name({"first_name": None, "last_name": None, "company": "Hopper Dental"}) == "Hopper Dental"


@pytest.mark.parametrize(
    ("number", "e164"),
    [
        ("5125551234", "+15125551234"),
        ("(512) 555-1234", "+15125551234"),
        ("1-512-555-1234", "+15125551234"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
    ],
)
def test_to_e164(number: str, e164: str) -> None:
    assert to_e164(number) == e164


@pytest.mark.parametrize("number", ["", "555-1234", "12345678901234567", "+0123456789", "call me"])
def test_to_e164_rejects_what_cannot_be_texted(number: str) -> None:
    with pytest.raises(SmsRejectedError, match="not a phone number"):
        to_e164(number)


def test_masks_for_logs() -> None:
    assert mask_number("+15125551234") == "***1234"
    assert mask_email("ava.smith@example.com") == "a***@example.com"


def conn(**kw: Any) -> SimpleNamespace:
    base = {"conn_id": "sms_x", "host": None, "port": None, "schema": None, "login": "AC123", "password": "tok"}
    return SimpleNamespace(**{**base, **kw})


def test_sms_config_from_a_connection() -> None:
    config = config_from_connection(conn(), {"from_number": "5125550100"})
    assert config.messages_url == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    assert config.form("512 555 1234", "Hi") == {"To": "+15125551234", "Body": "Hi", "From": "+15125550100"}
    assert "tok" not in repr(config)
    sink = config_from_connection(conn(host="http://127.0.0.1:8765/_sandbox/sinks/sms/"), {"from_number": "+1512"})
    assert sink.base_url == "http://127.0.0.1:8765/_sandbox/sinks/sms"
    assert config_from_connection(conn(host="127.0.0.1", port=9000), {"from_number": "x"}).base_url == (
        "http://127.0.0.1:9000"
    )
    assert config_from_connection(conn(host="sms.example.com"), {}).base_url == "https://sms.example.com"
    service = config_from_connection(conn(), {"messaging_service_sid": "MG1"})
    assert service.form("5125551234", "Hi")["MessagingServiceSid"] == "MG1"


@pytest.mark.parametrize(
    ("connection", "extras", "message"),
    [
        (conn(login=None), {"from_number": "5125550100"}, "account SID as login and the auth token as password"),
        (conn(password=""), {"from_number": "5125550100"}, "account SID as login and the auth token as password"),
        (conn(), {"timeout": "soon"}, "must be a number of seconds"),
    ],
)
def test_sms_config_errors(connection: SimpleNamespace, extras: dict[str, Any], message: str) -> None:
    with pytest.raises(SmsRejectedError, match=message):
        config_from_connection(connection, extras)


def test_sms_form_needs_a_sender_and_a_body() -> None:
    config = config_from_connection(conn(), {})
    with pytest.raises(SmsRejectedError, match="has no sender"):
        config.form("5125551234", "Hi")
    with pytest.raises(SmsRejectedError, match="empty text message"):
        config_from_connection(conn(), {"from_number": "5125550100"}).form("5125551234", "  ")


def test_email_html_round_trips_to_the_same_text() -> None:
    text = "Hi Ava,\n\nWhat: HVAC <Tune-Up> & more\nWhen: Tue Dec 1\n\nLone Star Home Services"
    html = text_to_html(text)
    assert "&lt;Tune-Up&gt; &amp; more" in html and "<br>" in html
    assert html_to_text(html) == text
