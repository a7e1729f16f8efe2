"""Messaging for DAGs built on Housecall Pro events: texts (Twilio-compatible HTTP), email (Airflow's SMTP
provider) and the text helpers customer messages need (local schedule windows, money, names).

Everything is configured by Airflow connections — ``sms_default`` and ``smtp_default`` by default — so the
same DAG talks to the sandbox's local sinks in development and to the real gateways in production.
"""

from __future__ import annotations

from hcp_messaging.formatting import (
    format_local_time,
    format_money,
    format_phone,
    format_window,
    job_title,
    job_type_name,
    person_name,
    street_address,
)
from hcp_messaging.mail import DEFAULT_SMTP_CONN_ID, send_email, text_to_html
from hcp_messaging.sms import (
    DEFAULT_SMS_CONN_ID,
    SmsError,
    SmsHook,
    SmsNotifier,
    SmsRejectedError,
    send_sms,
    send_sms_notification,
    to_e164,
)

__all__ = [
    "DEFAULT_SMS_CONN_ID",
    "DEFAULT_SMTP_CONN_ID",
    "SmsError",
    "SmsHook",
    "SmsNotifier",
    "SmsRejectedError",
    "format_local_time",
    "format_money",
    "format_phone",
    "format_window",
    "job_title",
    "job_type_name",
    "person_name",
    "send_email",
    "send_sms",
    "send_sms_notification",
    "street_address",
    "text_to_html",
    "to_e164",
]
