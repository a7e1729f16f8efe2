"""The messaging pieces through real Airflow connections, against the sandbox's SMS and SMTP sinks."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
from hcp_messaging import (
    SmsError,
    SmsHook,
    SmsNotifier,
    SmsRejectedError,
    send_email,
    send_sms,
)
from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin

from tests.conftest import SMS_TOKEN as TOKEN


@pytest.fixture
def sinks(sandbox: SandboxWithSinks) -> SandboxWithSinks:
    return sandbox


@pytest.fixture
def ctl(sinks: SandboxWithSinks, admin: SinkAdmin, monkeypatch: pytest.MonkeyPatch) -> SinkAdmin:
    for name, value in sinks.airflow_connections().items():
        monkeypatch.setenv(name, value)
    return admin


def sms_conn(sinks: SandboxWithSinks, **changes: Any) -> str:
    conn = json.loads(sinks.airflow_connections()["AIRFLOW_CONN_SMS_DEFAULT"])
    conn.update(changes)
    return json.dumps(conn)


def test_send_sms_through_the_connection(ctl: SinkAdmin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sent = send_sms("(512) 555-1234", "Your visit is booked.")
    [received] = ctl.sms()
    assert (received["to"], received["from"], received["body"]) == (
        "+15125551234",
        "+15125550100",
        "Your visit is booked.",
    )
    assert sent["sid"] == received["sid"] and sent["status"] == "queued"
    assert f"Sent SMS {sent['sid']} to ***1234" in caplog.text
    assert TOKEN not in caplog.text and "5125551234" not in caplog.text


def test_from_number_can_be_given_per_message(ctl: SinkAdmin) -> None:
    SmsHook().send("5125551234", "From the tech line", from_number="5125550155")
    assert ctl.sms()[0]["from"] == "+15125550155"


def test_wrong_token_is_rejected_without_retry_and_without_the_token(
    sinks: SandboxWithSinks, ctl: SinkAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMS_BAD", sms_conn(sinks, password="wrong-SECRET-value"))
    with pytest.raises(SmsRejectedError) as caught:
        send_sms("5125551234", "hi", sms_conn_id="sms_bad")
    message = str(caught.value)
    assert caught.value.status == 401 and caught.value.code == 20003
    assert "401 Authenticate (error 20003)" in message and "connection 'sms_bad'" in message
    assert "check the account SID (login) and auth token (password)" in message
    assert "wrong-SECRET-value" not in message and TOKEN not in message
    assert ctl.sms() == []


def test_an_unreachable_gateway_is_an_error_that_may_be_retried(
    sinks: SandboxWithSinks, ctl: SinkAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SMS_DOWN", sms_conn(sinks, host=f"http://127.0.0.1:{port}"))
    with pytest.raises(SmsError) as caught:
        send_sms("5125551234", "hi", sms_conn_id="sms_down")
    assert not isinstance(caught.value, SmsRejectedError)
    assert "ConnectError" in str(caught.value) and TOKEN not in str(caught.value)


def test_gateway_validation_errors_are_rejections(ctl: SinkAdmin) -> None:
    with pytest.raises(SmsRejectedError) as caught:
        send_sms("5125551234", "x" * 1601)
    assert caught.value.status == 400 and caught.value.code == 21617


async def test_async_send(ctl: SinkAdmin) -> None:
    sent = await SmsHook().asend("5125551234", "async hello")
    assert ctl.sms()[0]["sid"] == sent["sid"]


def test_sms_notifier_renders_its_templates_and_texts_every_recipient(ctl: SinkAdmin) -> None:
    from airflow.sdk import DAG

    with DAG("hcp_notifier_probe", schedule=None) as dag:
        pass
    notifier = SmsNotifier(to="{{ params.crew }}", body="{{ dag.dag_id }} needs a look ({{ params.why }})")
    notifier({"dag": dag, "params": {"crew": "5125550101, +15125550102", "why": "job moved"}})
    assert [(m["to"], m["body"]) for m in ctl.sms()] == [
        ("+15125550101", "hcp_notifier_probe needs a look (job moved)"),
        ("+15125550102", "hcp_notifier_probe needs a look (job moved)"),
    ]


async def test_sms_notifier_async(ctl: SinkAdmin) -> None:
    await SmsNotifier(to=["5125550101"], body="from the triggerer").async_notify({})
    assert [m["body"] for m in ctl.sms()] == ["from the triggerer"]


def test_send_email_through_the_smtp_provider(ctl: SinkAdmin) -> None:
    send_email(["ava@example.com", "ops@example.com"], "Booked: Tue Dec 1", "Hi Ava,\n\nSee you <soon> & bye.")
    [mail] = ctl.emails()
    assert mail["to"] == ["ava@example.com", "ops@example.com"]
    assert mail["from"] == "Lone Star Home Services <office@lonestarhome.example>"
    assert (mail["subject"], mail["text"]) == ("Booked: Tue Dec 1", "Hi Ava,\n\nSee you <soon> & bye.")
