"""Never dies: what a live API may send (drift), what a DAG author may type (bad options), over real paths."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from airflow_provider_housecallpro.api.errors import HousecallProDecodeError
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from airflow_provider_housecallpro.sensors.jobs import JobCompletedSensor, JobScheduledSensor
from tests.support.jobs import a_customer, slot
from tests.support.sensor_harness import SensorHarness, run_trigger_once

# The published spec's own example values where a timestamp belongs, and other things seen or feared live.
DRIFT: dict[str, Any] = {
    "placeholder timestamp in a field the job can do without": {"locked_at": "string"},
    "null nested objects": {"address": None, "work_timestamps": None, "job_fields": None},
    "unknown extra fields": {"assigned_route_template_id": "rt_1", "brand_new_field": {"x": [1, 2]}},
    "wrong types where the job can do without": {"tags": "not-a-list", "total_amount": "12.50", "notes": 7},
    "huge and non-ASCII text": {"description": "Fußbodenheizung — 修理 " * 5000},
    "customer without an id": {"customer": {"first_name": "No", "last_name": "Id"}},
    "employee without an id": {"assigned_employees": [{"first_name": "Pat"}]},
}
UNUSABLE: dict[str, Any] = {
    "placeholder updated_at": {"updated_at": "string"},
    "placeholder scheduled_start": {"schedule": {"scheduled_start": "string"}},
    "no id": {"id": None},
    "schedule not an object": {"schedule": "tomorrow"},
}


def _page(jobs: list[dict[str, Any]]) -> str:
    return json.dumps({"page": 1, "page_size": 100, "total_pages": 1, "total_items": len(jobs), "jobs": jobs})


def _drifted(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    job = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(job.get(key), dict) and key != "customer":
            job[key] = {**job[key], **value}
        else:
            job[key] = value
    return job


@pytest.mark.parametrize("case", sorted(DRIFT))
def test_trigger_delivers_a_drifted_job_and_its_neighbours(
    case: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = SensorHarness("scheduled", "deferred", connection)
    h.baseline()
    customer = a_customer(hook)
    good = admin.book_job(customer_id=customer, **slot(2))
    odd = admin.book_job(customer_id=customer, **slot(3))
    page = [_drifted(odd, DRIFT[case]), good]
    admin.fault("malformed", path="/jobs", body=_page(page), times=3)
    assert h.trigger is not None
    payload = __import__("asyncio").run(run_trigger_once(h.trigger))
    assert payload["status"] == "success", payload
    assert sorted(e["job"]["id"] for e in payload["events"]) == sorted([good["id"], odd["id"]])


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_trigger_skips_an_unusable_job_with_one_warning_and_delivers_the_rest(
    case: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = SensorHarness("scheduled", "deferred", connection)
    h.baseline()
    customer = a_customer(hook)
    good = admin.book_job(customer_id=customer, **slot(2))
    bad = _drifted(admin.book_job(customer_id=customer, **slot(3)), UNUSABLE[case])
    admin.fault("malformed", path="/jobs", body=_page([bad, good]), times=3)
    caplog.set_level(logging.WARNING)
    assert h.trigger is not None
    payload = __import__("asyncio").run(run_trigger_once(h.trigger))
    assert payload["status"] == "success", payload
    assert [e["job"]["id"] for e in payload["events"]] == [good["id"]]
    warnings = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(set(warnings)) == 1 and "skipping job" in warnings[0], warnings


def test_hook_list_keeps_the_readable_records_of_a_page(
    hook: HousecallProHook, admin: SandboxAdmin, caplog: pytest.LogCaptureFixture
) -> None:
    customer = a_customer(hook)
    good = admin.book_job(customer_id=customer, **slot(2))
    page = [
        _drifted(good, {"id": None}),
        _drifted(good, DRIFT["placeholder timestamp in a field the job can do without"]),
    ]
    admin.fault("malformed", path="/jobs", body=_page(page))
    caplog.set_level(logging.WARNING)
    jobs = hook.list_jobs().items
    assert [j.id for j in jobs] == [good["id"]] and jobs[0].locked_at is None
    assert any("skipping job <no id>" in r.getMessage() for r in caplog.records)


def test_hook_get_job_reads_a_drifted_job(hook: HousecallProHook, admin: SandboxAdmin) -> None:
    job = admin.book_job(customer_id=a_customer(hook), **slot(2))
    admin.fault("malformed", path=f"/jobs/{job['id']}", body=json.dumps(_drifted(job, {"locked_at": "string"})))
    got = hook.get_job(job["id"])
    assert got.id == job["id"] and got.locked_at is None


@pytest.mark.parametrize("body", ['{"jobs": [', '{"data": []}', "[1, 2]", '{"jobs": [1, 2]}'])
def test_not_an_envelope_is_a_decode_error_and_an_error_event(
    body: str, hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    admin.fault("malformed", path="/jobs", body=body)
    with pytest.raises(HousecallProDecodeError):
        hook.list_jobs()
    h = SensorHarness("completed", "deferred", connection)
    h.baseline()
    admin.fault("malformed", path="/jobs", body=body, times=10)
    assert h.trigger is not None
    payload = __import__("asyncio").run(run_trigger_once(h.trigger))
    assert payload["status"] == "error" and "HousecallProDecodeError" in payload["message"]


def test_find_records_cli_survives_a_drifted_page(
    hook: HousecallProHook, admin: SandboxAdmin, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import conn_json

    customer = a_customer(hook)
    good = admin.book_job(customer_id=customer, **slot(2))
    admin.fault("malformed", path="/jobs", body=_page([_drifted(good, UNUSABLE["placeholder updated_at"]), good]))
    cli = str(Path(sys.executable).parent / "housecallpro")
    env = {**__import__("os").environ, "AIRFLOW_CONN_HCP_FIND": conn_json(sandbox.url)}
    out = subprocess.run(
        [cli, "find-records", "--conn-id", "hcp_find", "--event", "scheduled", "--limit", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert [e["job"]["id"] for e in json.loads(out.stdout)] == [good["id"]]


BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"client_options": {"timeot": 5}}, "unknown client_options"),
    ({"client_options": {"timeout": "fast"}}, r"client_options\['timeout'\] must be a number"),
    ({"client_options": {"max_retries": 2.5}}, "must be a whole number"),
    ({"client_options": {"max_retries": 99}}, "between 0 and 20"),
    ({"detector_options": {"page_size": 500}}, "between 1 and 200"),
    ({"detector_options": {"retension": 5}}, "unknown detector_options"),
    ({"detector_options": {"settle": -1}}, "between 0"),
    ({"filters": {"job_typ": "x"}}, "job_typ"),
    ({"filters": "not a dict"}, "filters must be a dict"),
    ({"poke_interval": 0}, "poke_interval must be between"),
    ({"poke_interval": "soon"}, "poke_interval must be a number"),
    ({"max_events": 0}, "max_events must be between"),
    ({"max_events": "10"}, "max_events must be a number"),
    ({"since": "yesterday"}, "since must be an ISO-8601 timestamp"),
    ({"timeout": -5}, "timeout"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_OPTIONS)
@pytest.mark.parametrize("cls", [JobScheduledSensor, JobCompletedSensor])
def test_bad_options_fail_when_the_dag_is_parsed(cls: type, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        cls(task_id="s", **kwargs)


def test_hook_rejects_unknown_client_options() -> None:
    with pytest.raises(ValueError, match="unknown client_options"):
        HousecallProHook(client_options={"verify": False})
