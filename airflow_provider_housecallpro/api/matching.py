"""Exact matching of customers found by the API's fuzzy ``q`` search (pure, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Sequence
from datetime import UTC, datetime

from airflow_provider_housecallpro.api.models import Customer

_MAX = datetime.max.replace(tzinfo=UTC)


def normalize_email(email: str) -> str:
    return email.strip().casefold()


def normalize_phone(phone: str) -> str:
    digits = re.sub(r"[^0-9]", "", phone)
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def lookup_terms(email: str | None, phone: str | None) -> list[tuple[str, str]]:
    """The ``q`` searches to run, in order: (kind, normalized value)."""
    terms: list[tuple[str, str]] = []
    if email and email.strip():
        terms.append(("email", normalize_email(email)))
    if phone and normalize_phone(phone):
        terms.append(("phone", normalize_phone(phone)))
    return terms


def is_exact_match(customer: Customer, kind: str, value: str) -> bool:
    if kind == "email":
        return bool(customer.email) and normalize_email(customer.email or "") == value
    numbers = (customer.mobile_number, customer.home_number, customer.work_number)
    return any(n and normalize_phone(n) == value for n in numbers)


def oldest(customers: Iterable[Customer]) -> Customer | None:
    """Of several exact matches, the one created first is the canonical record."""
    return min(customers, key=lambda c: (c.created_at or _MAX, c.id), default=None)


def canonical(groups: Sequence[Sequence[Customer]]) -> Customer | None:
    """The customer a lookup stands for: the oldest email match, else the oldest phone match."""
    for group in groups:
        if group:
            return oldest(group)
    return None


Lookup = Generator[str, list[Customer], list[list[Customer]]]


def lookup(email: str | None, phone: str | None, *, first_only: bool) -> Lookup:
    """The searches of a customer lookup, sans I/O: yields each ``q`` to search, is sent the customers found, and
    returns the exact matches, one group per key (email, then phone). ``first_only`` stops at the first key with a
    match (enough for :func:`canonical`). The hook's sync and async paths drive this one generator."""
    groups: list[list[Customer]] = []
    for kind, value in lookup_terms(email, phone):
        found = yield value
        groups.append([c for c in found if is_exact_match(c, kind, value)])
        if first_only and groups[-1]:
            break
    return groups
