"""The receiver's refusals: each 4xx records nothing and never shows the secret (README "Real-time (webhooks)")."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from airflow_provider_housecallpro.webhooks.receiver import create_receiver_app
from tests.support.webhooks import CONN, SECRET, RecordingSink, oracle_signature


def signed(body: bytes, secret: str = SECRET, stamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    return {
        "api-timestamp": ts,
        "api-signature": oracle_signature(secret, ts, body),
        "content-type": "application/json",
    }


BODY = json.dumps(
    {
        "event": "job.scheduled",
        "event_occurred_at": "2026-12-07T10:00:00Z",
        "company_id": "cmp_1",
        "job": {"id": "job_1", "customer": {"first_name": "Ada", "email": "ada@example.com"}},
    }
).encode()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def client(sink: RecordingSink) -> Iterator[TestClient]:
    with TestClient(create_receiver_app(sink, max_body=4096)) as test_client:
        yield test_client


def post(client: TestClient, body: bytes, headers: dict[str, str], conn: str = CONN) -> Any:
    return client.post(f"/{conn}", content=body, headers=headers)


def test_a_signed_delivery_is_accepted_once(client: TestClient, sink: RecordingSink) -> None:
    response = post(client, BODY, signed(BODY))
    assert response.status_code == 200, response.text
    assert [(c, d.event, d.record) for c, d in sink.delivered] == [(CONN, "job.scheduled", json.loads(BODY)["job"])]


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "tampered body", "no timestamp", "no signature", "no headers", "stale", "future", "bad stamp"],
)
def test_refused_deliveries_record_nothing(client: TestClient, sink: RecordingSink, case: str) -> None:
    now = int(time.time())
    headers = signed(BODY)
    body = BODY
    if case == "wrong secret":
        headers = signed(BODY, secret="another-secret")
    elif case == "tampered body":
        body = BODY.replace(b"job_1", b"job_2")
    elif case == "no timestamp":
        del headers["api-timestamp"]
    elif case == "no signature":
        del headers["api-signature"]
    elif case == "no headers":
        headers = {"content-type": "application/json"}
    elif case == "stale":
        headers = signed(BODY, stamp=now - 3600)
    elif case == "future":
        headers = signed(BODY, stamp=now + 3600)
    elif case == "bad stamp":
        headers = {**signed(BODY), "api-timestamp": "yesterday"}
    response = post(client, body, headers)
    assert response.status_code == 401, response.text
    assert sink.delivered == []


def test_oversized_bodies_are_refused_unread_or_cut_off(client: TestClient, sink: RecordingSink) -> None:
    big = json.dumps({"event": "job.updated", "job": {"id": "j", "notes": "x" * 5000}}).encode()
    assert post(client, big, signed(big)).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    response = client.post(f"/{CONN}", content=chunks(), headers=signed(big))
    assert response.status_code == 413
    assert sink.delivered == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"job": {"id": "j"}}', b'{"event": "JOB SCHEDULED"}'])
def test_signed_bodies_that_are_not_deliveries_are_400(client: TestClient, sink: RecordingSink, body: bytes) -> None:
    response = post(client, body, signed(body))
    assert response.status_code == 400, response.text
    assert sink.delivered == []


def test_the_unsigned_validation_post_is_answered_and_records_nothing(client: TestClient, sink: RecordingSink) -> None:
    response = post(client, b'{"foo":"bar"}', {"content-type": "application/json"})
    assert response.status_code == 200
    assert sink.delivered == []
    # The same body without signature on a connection with no secret: still answered (the URL is saved first).
    assert post(client, b'{"foo":"bar"}', {}, conn="not_configured").status_code == 200


def test_a_connection_without_secret_refuses_deliveries(client: TestClient, sink: RecordingSink) -> None:
    assert post(client, BODY, signed(BODY), conn="not_configured").status_code == 404
    assert post(client, BODY, signed(BODY), conn="bad/name").status_code == 404
    assert sink.delivered == []


def test_a_sink_failure_is_a_503_so_housecall_pro_retries() -> None:
    failing = RecordingSink(fail_next=1)
    with TestClient(create_receiver_app(failing)) as client:
        response = post(client, BODY, signed(BODY))
    assert response.status_code == 503
    assert "metadata" not in response.text


def test_no_secret_or_personal_data_in_logs_responses_or_reprs(
    client: TestClient, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [
        post(client, BODY, signed(BODY)),
        post(client, BODY, signed(BODY, secret="wrong")),
        post(client, b"junk", signed(b"junk")),
        post(client, b'{"foo":"bar"}', {}),
    ]
    texts = [r.text for r in responses] + [caplog.text] + [repr(d) for _, d in sink.delivered]
    assert all("ada@example.com" not in repr(d) for _, d in sink.delivered)
    for text in texts:
        assert SECRET not in text
    info = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "ada@example.com" not in info and "Ada" not in info
    assert "job.scheduled" in info  # what was accepted is logged, without the body
