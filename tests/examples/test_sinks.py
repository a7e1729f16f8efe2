"""The local message sinks over real sockets: the Twilio-compatible SMS endpoint and the SMTP server."""

from __future__ import annotations

import smtplib
import socket
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import httpx
import pytest
from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin, html_to_text, sms_segments

from tests.conftest import SMS_SID as SID
from tests.conftest import SMS_TOKEN as TOKEN


@pytest.fixture
def server(sandbox: SandboxWithSinks) -> SandboxWithSinks:
    return sandbox


@pytest.fixture
def ctl(admin: SinkAdmin) -> SinkAdmin:
    return admin


def post_sms(server: SandboxWithSinks, data: dict[str, str], auth: tuple[str, str] = (SID, TOKEN), sid: str = SID):
    url = f"{server.sms_base_url}/2010-04-01/Accounts/{sid}/Messages.json"
    return httpx.post(url, data=data, auth=auth, timeout=10)


def smtp(server: SandboxWithSinks) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)


# -- SMS --------------------------------------------------------------------------------------------
def test_sms_is_accepted_like_twilio_and_recorded(server: SandboxWithSinks, ctl: SinkAdmin) -> None:
    response = post_sms(server, {"To": "+15125551234", "From": "+15125550100", "Body": "Your visit is booked."})
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert (body["to"], body["from"], body["body"], body["status"]) == (
        "+15125551234",
        "+15125550100",
        "Your visit is booked.",
        "queued",
    )
    assert body["account_sid"] == SID and body["num_segments"] == "1" and body["direction"] == "outbound-api"
    assert body["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{body['sid']}.json"
    [recorded] = ctl.sms()
    assert {k: recorded[k] for k in ("sid", "to", "from", "body")} == {
        "sid": body["sid"],
        "to": "+15125551234",
        "from": "+15125550100",
        "body": "Your visit is booked.",
    }
    assert TOKEN not in str(ctl.messages())


@pytest.mark.parametrize(
    ("auth", "sid"),
    [((SID, "wrong-token"), SID), (("ACother", TOKEN), SID), ((SID, TOKEN), "ACother")],
    ids=["wrong-token", "wrong-login", "other-account-path"],
)
def test_sms_with_wrong_credentials_is_401_and_not_recorded(
    server: SandboxWithSinks, ctl: SinkAdmin, auth: tuple[str, str], sid: str
) -> None:
    response = post_sms(server, {"To": "+15125551234", "From": "+15125550100", "Body": "x"}, auth=auth, sid=sid)
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert ctl.sms() == []


def test_sms_without_basic_auth_is_401(server: SandboxWithSinks, ctl: SinkAdmin) -> None:
    url = f"{server.sms_base_url}/2010-04-01/Accounts/{SID}/Messages.json"
    assert httpx.post(url, data={"To": "+15125551234"}, timeout=10).status_code == 401
    headers = {"Authorization": "Basic !!not-base64!!"}
    assert httpx.post(url, data={"To": "+15125551234"}, headers=headers, timeout=10).status_code == 401


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"From": "+15125550100", "Body": "x"}, 21604),
        ({"To": "5125551234", "From": "+15125550100", "Body": "x"}, 21211),
        ({"To": "+15125551234", "Body": "x"}, 21603),
        ({"To": "+15125551234", "From": "+15125550100", "Body": "  "}, 21602),
        ({"To": "+15125551234", "From": "+15125550100", "Body": "x" * 1601}, 21617),
    ],
    ids=["no-to", "not-e164", "no-from", "empty-body", "too-long"],
)
def test_sms_validation_errors_use_twilio_codes(
    server: SandboxWithSinks, ctl: SinkAdmin, data: dict[str, str], code: int
) -> None:
    response = post_sms(server, data)
    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["status"] == 400
    assert ctl.sms() == []


def test_sms_segments() -> None:
    assert sms_segments("x" * 160) == 1
    assert sms_segments("x" * 161) == 2
    assert sms_segments("☺" * 70) == 1
    assert sms_segments("☺" * 71) == 2


# -- SMTP -------------------------------------------------------------------------------------------
def test_smtp_records_a_message_with_envelope_headers_and_text(server: SandboxWithSinks, ctl: SinkAdmin) -> None:
    message = MIMEMultipart("mixed")
    message["Subject"] = "Your visit is booked — Tue Dec 1"
    message["From"] = "Lone Star <office@lonestarhome.example>"
    message["To"] = "ava@example.com"
    message.attach(MIMEText("<p>Hi Ava,<br>see you soon.</p><p>.a line starting with a dot</p>", "html", "utf-8"))
    with smtp(server) as client:
        assert client.ehlo()[0] == 250
        assert client.has_extn("8bitmime") and not client.has_extn("starttls") and not client.has_extn("auth")
        refused = client.sendmail(
            "office@lonestarhome.example", ["ava@example.com", "cc@example.com"], message.as_string()
        )
        assert refused == {}
    [mail] = ctl.emails()
    assert mail["envelope_from"] == "office@lonestarhome.example"
    assert mail["to"] == ["ava@example.com", "cc@example.com"]
    assert mail["from"] == "Lone Star <office@lonestarhome.example>"
    assert mail["subject"] == "Your visit is booked — Tue Dec 1"
    assert mail["text"] == "Hi Ava,\nsee you soon.\n\n.a line starting with a dot"
    assert "<br>" in mail["html"]


def test_smtp_plain_text_part_wins_and_dot_stuffing_is_undone(server: SandboxWithSinks, ctl: SinkAdmin) -> None:
    text = "Line one\n.Line with a leading dot\n..two dots"
    with smtp(server) as client:
        client.sendmail("a@example.com", ["b@example.com"], MIMEText(text, "plain", "utf-8").as_string())
    assert ctl.emails()[0]["text"] == text


def test_smtp_commands_and_sequence_errors(server: SandboxWithSinks, ctl: SinkAdmin) -> None:
    with smtp(server) as client:
        assert client.docmd("MAIL", "FROM:<a@example.com>")[0] == 503  # no EHLO yet
        client.ehlo("client.example")
        assert client.docmd("RCPT", "TO:<b@example.com>")[0] == 503  # no MAIL
        assert client.docmd("DATA")[0] == 503
        assert client.docmd("MAIL", "FROM:<a@example.com>")[0] == 250
        assert client.docmd("MAIL", "FROM:<a@example.com>")[0] == 503  # nested MAIL
        assert client.docmd("RCPT", "TO:nonsense")[0] == 501
        assert client.docmd("RCPT", "TO:<b@example.com>")[0] == 250
        assert client.rset()[0] == 250
        assert client.docmd("DATA")[0] == 503  # the transaction was reset
        assert client.noop()[0] == 250
        assert client.verify("b@example.com")[0] == 252
        assert client.docmd("STARTTLS")[0] == 454
        assert client.docmd("AUTH", "PLAIN")[0] == 502
        assert client.docmd("BOGUS")[0] == 500
        assert client.helo("client.example")[0] == 250
        assert client.docmd("MAIL", "FROM:<>")[0] == 250  # the null sender is allowed
    assert ctl.emails() == []


def test_smtp_client_that_disconnects_mid_message_records_nothing(server: SandboxWithSinks, ctl: SinkAdmin) -> None:
    with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        for command in (b"HELO x\r\n", b"MAIL FROM:<a@example.com>\r\n", b"RCPT TO:<b@example.com>\r\n", b"DATA\r\n"):
            sock.sendall(command)
            reader.readline()
        sock.sendall(b"Subject: half\r\n\r\nnever finished")
    with smtp(server) as client:  # the server is still fine
        assert client.noop()[0] == 250
    assert ctl.emails() == []


def test_messages_are_cleared_by_delete_and_by_reset(server: SandboxWithSinks, ctl: SinkAdmin) -> None:
    post_sms(server, {"To": "+15125551234", "From": "+15125550100", "Body": "one"})
    with smtp(server) as client:
        client.sendmail("a@example.com", ["b@example.com"], "Subject: s\r\n\r\nbody")
    assert [len(v) for v in ctl.messages().values()] == [1, 1]
    ctl.clear_messages()
    assert ctl.messages() == {"sms": [], "email": []}
    post_sms(server, {"To": "+15125551234", "From": "+15125550100", "Body": "two"})
    ctl.reset()
    assert ctl.messages() == {"sms": [], "email": []}


def test_smtp_sink_is_optional_and_stops_with_the_server() -> None:
    with SandboxWithSinks() as plain:
        with pytest.raises(RuntimeError, match="smtp_port=0"):
            _ = plain.smtp_port
        assert "AIRFLOW_CONN_SMTP_DEFAULT" not in plain.airflow_connections()
    with SandboxWithSinks(smtp_port=0) as srv:
        port = srv.smtp_port
        assert set(srv.airflow_connections()) == {
            "AIRFLOW_CONN_HOUSECALLPRO_DEFAULT",
            "AIRFLOW_CONN_SMS_DEFAULT",
            "AIRFLOW_CONN_SMTP_DEFAULT",
        }
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_html_to_text() -> None:
    assert html_to_text("<html><head><style>p {}</style></head><body><p>A &amp; B<br>c</p><p>d</p></body>") == (
        "A & B\nc\n\nd"
    )
