"""Customer-facing text from Housecall Pro payloads: schedule windows in the company's time zone, money, names.

Pure functions (no Airflow, no I/O), used by the example DAGs; handy in your own message templates.
Housecall Pro sends times in UTC and money in cents; customers read local times and dollars.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_housecallpro.api.matching import normalize_phone
from airflow_provider_housecallpro.api.models import parse_timestamp

EN_DASH = "\u2013"


def parse_time(value: str | datetime) -> datetime:
    """An API timestamp (``2026-12-01T15:00:00Z``) as an aware UTC datetime (naive means UTC): the provider's
    own parser, so a message reads a time exactly as the sensors do."""
    when = parse_timestamp(value)
    if when is None:
        raise ValueError("no timestamp given")
    return when


def _clock(when: datetime, meridiem: bool = True) -> str:
    hour = when.hour % 12 or 12
    text = f"{hour}:{when.minute:02d}"
    return f"{text} {'AM' if when.hour < 12 else 'PM'}" if meridiem else text


def _day(when: datetime) -> str:
    return f"{when:%a %b} {when.day}"


def format_local_time(value: str | datetime, time_zone: str) -> str:
    """``Tue Dec 1, 9:00 AM CST`` — one instant in ``time_zone`` (an IANA name such as ``America/Chicago``)."""
    local = parse_time(value).astimezone(ZoneInfo(time_zone))
    return f"{_day(local)}, {_clock(local)} {local:%Z}"


def format_window(schedule: Mapping[str, Any] | None, time_zone: str) -> str:
    """A job's scheduled window in the company's time zone, as a customer reads it.

    ``Tue Dec 1, 9:00-11:00 AM CST``; ``Tue Dec 1, 11:30 AM-1:30 PM CST``; across midnight
    ``Tue Dec 1, 10:00 PM - Wed Dec 2, 2:00 AM CST``; without an end ``Tue Dec 1, 9:00 AM CST``;
    ``not scheduled`` when there is no start. (The dashes are en dashes, U+2013.)
    """
    start_raw = (schedule or {}).get("scheduled_start")
    if not start_raw:
        return "not scheduled"
    zone = ZoneInfo(time_zone)
    start = parse_time(start_raw).astimezone(zone)
    end_raw = (schedule or {}).get("scheduled_end")
    if not end_raw:
        return f"{_day(start)}, {_clock(start)} {start:%Z}"
    end = parse_time(end_raw).astimezone(zone)
    if end.date() != start.date():
        return f"{_day(start)}, {_clock(start)} {EN_DASH} {_day(end)}, {_clock(end)} {end:%Z}"
    same_half = (start.hour < 12) == (end.hour < 12)
    return f"{_day(start)}, {_clock(start, meridiem=not same_half)}{EN_DASH}{_clock(end)} {end:%Z}"


def format_money(cents: int | None) -> str:
    """Integer cents as dollars: ``16500`` → ``$165.00``, ``-250`` → ``-$2.50``."""
    value = int(cents or 0)
    sign = "-" if value < 0 else ""
    dollars, rest = divmod(abs(value), 100)
    return f"{sign}${dollars:,}.{rest:02d}"


def format_phone(number: str | None) -> str:
    """A 10-digit US number for display: ``5125550100`` → ``(512) 555-0100`` (anything else as given)."""
    digits = normalize_phone(number or "")  # the provider's phone rule (a leading 1 dropped), as matching uses
    if len(digits) != 10:
        return number or ""
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def job_title(job: Mapping[str, Any]) -> str:
    """What the visit is, in the customer's words: the job type's name, else the description."""
    return job_type_name(job) or str(job.get("description") or "service visit")


def job_type_name(job: Mapping[str, Any]) -> str | None:
    name = ((job.get("job_fields") or {}).get("job_type") or {}).get("name")
    return str(name) if name else None


def street_address(address: Mapping[str, Any] | None) -> str:
    """``7081 Oak Hollow Dr, Apt 2, Pflugerville, TX 78660`` (missing parts left out)."""
    if not address:
        return ""
    region = " ".join(p for p in (address.get("state"), address.get("zip")) if p)
    parts = (address.get("street"), address.get("street_line_2"), address.get("city"), region)
    return ", ".join(str(p) for p in parts if p)


def person_name(person: Mapping[str, Any] | None) -> str:
    """``First Last`` of a customer or employee (else the company name, else empty)."""
    if not person:
        return ""
    name = " ".join(str(p) for p in (person.get("first_name"), person.get("last_name")) if p)
    return name or str(person.get("company") or "")


__all__ = [
    "format_local_time",
    "format_money",
    "format_phone",
    "format_window",
    "job_title",
    "job_type_name",
    "parse_time",
    "person_name",
    "street_address",
]
