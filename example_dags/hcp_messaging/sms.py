"""Text messages through a Twilio-compatible HTTP API, configured by an Airflow connection.

One request, the one Twilio's Messages API takes (also spoken by several other SMS gateways and by the
sandbox's SMS sink)::

    POST {host}/2010-04-01/Accounts/{login}/Messages.json      (HTTP basic auth login:password)
    To=+15125551234&From=+15125550100&Body=...

The connection (default id ``sms_default``, type ``http``):

===================  =============================================================================
host                 API base URL; empty means ``https://api.twilio.com``
login                the account SID
password             the auth token — the only secret, kept in the password field and never logged
extra ``from_number``            sender number (E.164), or
extra ``messaging_service_sid``  a Twilio messaging service instead of a number
extra ``timeout``                seconds per request (default 30)
extra ``default_country_code``   prefix for 10-digit national numbers (default ``1``: US/Canada)
===================  =============================================================================

Use :func:`send_sms` / :class:`SmsHook` inside a ``@task``, or :class:`SmsNotifier` (Airflow's notifier
interface) as a callback: ``on_failure_callback=SmsNotifier(to="+15125550100", body="{{ ti.task_id }} failed")``.

A send is not retried by the hook: an SMS cannot be recalled, and an ambiguous failure (a timeout) may
have delivered it. A rejected message (4xx other than 429: bad number, bad credentials) raises
:class:`SmsRejectedError`, which fails the task without retries.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from airflow.providers.common.compat.notifier import BaseNotifier
from airflow.providers.common.compat.sdk import AirflowFailException, BaseHook

from airflow_provider_housecallpro.urls import base_url

log = logging.getLogger(__name__)

DEFAULT_SMS_CONN_ID = "sms_default"
DEFAULT_SMS_BASE_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"


class SmsError(Exception):
    """Sending a text message failed. Carries the gateway's status, error code and message; never the token."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SmsRejectedError(SmsError, AirflowFailException):
    """The gateway refused the message (bad number, missing field, wrong credentials): not retried."""


def to_e164(number: str, default_country_code: str = "1") -> str:
    """A phone number in E.164, the form SMS APIs take: ``5125551234`` → ``+15125551234``.

    Accepts ``+`` numbers (kept), ``00`` international prefixes, 10-digit national numbers (given
    ``default_country_code``) and 11-digit numbers starting with it; punctuation is ignored.
    """
    text = (number or "").strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        candidate = digits
    elif digits.startswith("00"):
        candidate = digits[2:]
    elif len(digits) == 10:
        candidate = f"{default_country_code}{digits}"
    elif len(digits) == 10 + len(default_country_code) and digits.startswith(default_country_code):
        candidate = digits
    else:
        candidate = ""
    if not re.fullmatch(r"[1-9]\d{7,14}", candidate):
        raise SmsRejectedError(f"Cannot text {number!r}: not a phone number (expected e.g. 5125551234 or +15125551234)")
    return f"+{candidate}"


def mask_number(number: str) -> str:
    """For logs: only the last four digits of a phone number."""
    digits = re.sub(r"\D", "", number or "")
    return f"***{digits[-4:]}" if len(digits) >= 4 else "***"


@dataclass(frozen=True)
class SmsConfig:
    """What one send needs, read from the connection (the token is kept out of ``repr``)."""

    conn_id: str
    base_url: str
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    timeout: float = 30.0
    default_country_code: str = "1"

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/{API_VERSION}/Accounts/{quote(self.account_sid, safe='')}/Messages.json"

    def form(self, to: str, body: str, from_number: str | None = None) -> dict[str, str]:
        if not body or not body.strip():
            raise SmsRejectedError("Cannot send an empty text message")
        data = {"To": to_e164(to, self.default_country_code), "Body": body}
        sender = from_number or self.from_number
        if sender:
            data["From"] = to_e164(sender, self.default_country_code)
        elif self.messaging_service_sid:
            data["MessagingServiceSid"] = self.messaging_service_sid
        else:
            raise SmsRejectedError(
                f"SMS connection {self.conn_id!r} has no sender: set extra 'from_number' (or 'messaging_service_sid')"
            )
        return data


def config_from_connection(conn: Any, extras: Mapping[str, Any]) -> SmsConfig:
    conn_id = str(getattr(conn, "conn_id", "") or DEFAULT_SMS_CONN_ID)
    account_sid = (conn.login or "").strip()
    auth_token = (conn.password or "").strip()
    if not account_sid or not auth_token:
        raise SmsRejectedError(
            f"SMS connection {conn_id!r} needs the account SID as login and the auth token as password"
        )
    try:
        timeout = float(extras.get("timeout") or 30)
    except (TypeError, ValueError):
        raise SmsRejectedError(f"Extra 'timeout' of SMS connection {conn_id!r} must be a number of seconds") from None
    return SmsConfig(
        conn_id=conn_id,
        base_url=base_url(conn.host, conn.port, conn.schema, DEFAULT_SMS_BASE_URL),
        account_sid=account_sid,
        auth_token=auth_token,
        from_number=(str(extras["from_number"]).strip() or None) if extras.get("from_number") else None,
        messaging_service_sid=extras.get("messaging_service_sid") or None,
        timeout=timeout,
        default_country_code=str(extras.get("default_country_code") or "1").lstrip("+"),
    )


def _result(config: SmsConfig, to: str, response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.is_success and isinstance(payload, dict):
        return payload
    detail = payload if isinstance(payload, dict) else {}
    code = detail.get("code") if isinstance(detail.get("code"), int) else None
    reason = detail.get("message") or response.reason_phrase or "unexpected answer"
    message = (
        f"SMS to {mask_number(to)} failed: {response.status_code} {reason}"
        + (f" (error {code})" if code else "")
        + f" from {config.messages_url.split('/' + API_VERSION)[0]} (connection {config.conn_id!r})"
    )
    if response.status_code in (401, 403):
        message += "; check the account SID (login) and auth token (password)"
    if 400 <= response.status_code < 500 and response.status_code != 429:
        raise SmsRejectedError(message, status=response.status_code, code=code)
    raise SmsError(message, status=response.status_code, code=code)


def _transport_error(config: SmsConfig, to: str, exc: httpx.HTTPError) -> SmsError:
    maybe = isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout)
    hint = " (the message may have been sent)" if maybe else ""
    return SmsError(f"SMS to {mask_number(to)} failed: {type(exc).__name__} talking to {config.base_url}{hint}")


class SmsHook(BaseHook):
    """Send text messages through a Twilio-compatible API; see the module docstring for the connection.

    :param sms_conn_id: the connection (default ``sms_default``).
    """

    conn_name_attr = "sms_conn_id"
    default_conn_name = DEFAULT_SMS_CONN_ID
    conn_type = "http"
    hook_name = "SMS (Twilio-compatible HTTP)"

    def __init__(self, sms_conn_id: str = DEFAULT_SMS_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sms_conn_id = sms_conn_id

    def get_config(self) -> SmsConfig:
        conn = self.get_connection(self.sms_conn_id)
        return config_from_connection(conn, conn.extra_dejson)

    async def aget_config(self) -> SmsConfig:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.sms_conn_id, hook=type(self))
        return config_from_connection(conn, await get_async_extra_dejson(conn))

    def send(self, to: str, body: str, *, from_number: str | None = None) -> dict[str, Any]:
        """Send one text; returns the gateway's message resource (``sid``, ``status``, ``to``, …)."""
        config = self.get_config()
        data = config.form(to, body, from_number)
        try:
            with httpx.Client(timeout=config.timeout, headers={"Accept": "application/json"}) as client:
                response = client.post(config.messages_url, data=data, auth=(config.account_sid, config.auth_token))
        except httpx.HTTPError as exc:
            raise _transport_error(config, data["To"], exc) from None
        return self._sent(config, data, response)

    async def asend(self, to: str, body: str, *, from_number: str | None = None) -> dict[str, Any]:
        """:meth:`send` for an event loop (triggers, async notifiers)."""
        config = await self.aget_config()
        data = config.form(to, body, from_number)
        try:
            async with httpx.AsyncClient(timeout=config.timeout, headers={"Accept": "application/json"}) as client:
                response = await client.post(
                    config.messages_url, data=data, auth=(config.account_sid, config.auth_token)
                )
        except httpx.HTTPError as exc:
            raise _transport_error(config, data["To"], exc) from None
        return self._sent(config, data, response)

    def _sent(self, config: SmsConfig, data: Mapping[str, str], response: httpx.Response) -> dict[str, Any]:
        result = _result(config, data["To"], response)
        log.info(
            "Sent SMS %s to %s (%d characters, status %s)",
            result.get("sid"),
            mask_number(data["To"]),
            len(data["Body"]),
            result.get("status"),
        )
        return result


def send_sms(
    to: str, body: str, *, sms_conn_id: str = DEFAULT_SMS_CONN_ID, from_number: str | None = None
) -> dict[str, Any]:
    """Send one text message through the SMS connection; returns the gateway's message resource."""
    return SmsHook(sms_conn_id).send(to, body, from_number=from_number)


def _recipients(to: str | Iterable[str]) -> list[str]:
    if isinstance(to, str):
        return [part.strip() for part in to.split(",") if part.strip()]
    return [str(t).strip() for t in to if str(t).strip()]


class SmsNotifier(BaseNotifier):  # type: ignore[misc]
    """Airflow notifier sending a text, e.g. ``on_failure_callback=SmsNotifier(to=..., body=...)``.

    ``to`` (one number, a comma-separated string or a list), ``body``, ``from_number`` and ``sms_conn_id``
    are templated with the callback's context (``{{ dag.dag_id }}``, ``{{ ti.task_id }}``, …).
    """

    template_fields: Sequence[str] = ("to", "body", "from_number", "sms_conn_id")

    def __init__(
        self,
        *,
        to: str | Sequence[str],
        body: str,
        from_number: str | None = None,
        sms_conn_id: str = DEFAULT_SMS_CONN_ID,
    ) -> None:
        super().__init__()
        self.to = to
        self.body = body
        self.from_number = from_number
        self.sms_conn_id = sms_conn_id

    def _numbers(self) -> list[str]:
        numbers = _recipients(self.to)
        if not numbers:
            log.info("SmsNotifier: no recipient (`to` rendered empty); nothing sent")
        return numbers

    def notify(self, context: Any) -> None:
        hook = SmsHook(self.sms_conn_id)
        for number in self._numbers():
            hook.send(number, self.body, from_number=self.from_number)

    async def async_notify(self, context: Any) -> None:
        hook = SmsHook(self.sms_conn_id)
        for number in self._numbers():
            await hook.asend(number, self.body, from_number=self.from_number)


#: Airflow's naming convention for notifiers (``send_smtp_notification``, ``send_slack_notification``, …).
send_sms_notification = SmsNotifier

__all__ = [
    "DEFAULT_SMS_CONN_ID",
    "SmsConfig",
    "SmsError",
    "SmsHook",
    "SmsNotifier",
    "SmsRejectedError",
    "mask_number",
    "send_sms",
    "send_sms_notification",
    "to_e164",
]
