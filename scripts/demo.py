"""The README's demo: start the local sandbox, connect Airflow to it, show upcoming jobs.

Run through ``make demo`` (which creates the virtual environment first). Nothing here touches a real
Housecall Pro account: the API key and the API are the sandbox's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DEMO_KEY = "sandbox-demo-key"
CONN_ID = "housecallpro_default"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main() -> int:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hcp-demo-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    from airflow_provider_housecallpro.sandbox import SandboxServer

    step("Starting the local Housecall Pro sandbox API")
    with SandboxServer(api_key=DEMO_KEY, seed=1) as sandbox:
        print(f"    sandbox listening on {sandbox.url}")
        conn = f'{{"conn_type": "housecallpro", "host": "{sandbox.url}", "password": "{DEMO_KEY}"}}'
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = conn
        print(f"    connection {CONN_ID!r} set through AIRFLOW_CONN_{CONN_ID.upper()} (JSON)")

        step(f"airflow connections test {CONN_ID}")
        airflow = str(Path(sys.executable).parent / "airflow")
        env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
        result = subprocess.run([airflow, "connections", "test", CONN_ID], env=env, capture_output=True, text=True)
        print("    " + "\n    ".join(line for line in result.stdout.splitlines() if line.strip()))
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return 1

        from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

        hook = HousecallProHook(CONN_ID)
        company = hook.get_company()
        zone = ZoneInfo(company.time_zone or "UTC")
        step(f"Upcoming scheduled jobs at {company.name} (times in {zone})")
        jobs = list(
            hook.iter_jobs(
                work_status=["scheduled"],
                scheduled_start_min=datetime.now(UTC),
                sort_by="created_at",
            )
        )
        never = datetime.max.replace(tzinfo=UTC)
        jobs.sort(key=lambda j: (j.schedule.scheduled_start if j.schedule else None) or never)
        print(f"    {'when':<18} {'job':<37} {'customer':<18} {'job type':<17} crew")
        for job in jobs:
            start = job.schedule.scheduled_start if job.schedule else None
            when = start.astimezone(zone).strftime("%a %d %b %H:%M") if start else "-"
            customer = job.customer.display_name if job.customer else "-"
            job_type = (job.job_fields.job_type.name if job.job_fields and job.job_fields.job_type else None) or "-"
            crew = ", ".join(e.display_name for e in job.assigned_employees or []) or "unassigned"
            print(f"    {when:<18} {job.id:<37} {customer:<18} {job_type:<17} {crew}")
        from airflow_provider_housecallpro.sandbox import SandboxAdmin

        admin = SandboxAdmin(sandbox.url)
        show_events(hook, admin, zone)
        calls = [f"{r['method']} {r['path']} -> {r['status']}" for r in admin.requests()]
        step(f"Done. The sandbox answered {len(calls)} API requests in all; the last ones:")
        print("    " + "\n    ".join(calls[-6:]))
        hook.close()
    return 0


def show_events(hook: Any, admin: Any, zone: ZoneInfo) -> None:
    """Job scheduled / Job completed detection, through the same poll the sensors run."""
    from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorSettings
    from airflow_provider_housecallpro.events.poll import poll_plan

    def local(iso: str | None) -> str:
        return (
            datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(zone).strftime("%a %d %b %H:%M")
            if iso
            else "-"
        )

    start = datetime.now(UTC)
    states: dict[str, Any] = {}
    for kind in (SCHEDULED, COMPLETED):  # first poll: history fires nothing
        states[kind] = hook.poll_job_events(poll_plan(DetectorSettings(kind=kind), None, start, since=start)).state

    step("Making things happen in the sandbox: a booking, a reschedule, two completions (paid, unpaid)")
    customers = [c.id for c in hook.iter_customers(max_pages=1)]
    today = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + timedelta(days=1, hours=15)  # 3 pm local
    booked = admin.book_job(
        customer_id=customers[0],
        job_type="HVAC — Tune-Up",
        arrival_window=60,
        scheduled_start=tomorrow.isoformat(),
        scheduled_end=(tomorrow + timedelta(hours=2)).isoformat(),
    )
    upcoming = next(
        j for j in hook.iter_jobs(work_status="scheduled", scheduled_start_min=start) if j.id != booked["id"]
    )
    later = today + timedelta(days=3, hours=9)  # 9 am local
    admin.reschedule(
        upcoming.id, scheduled_start=later.isoformat(), scheduled_end=(later + timedelta(hours=2)).isoformat()
    )
    for job, paid in zip(list(hook.iter_jobs(work_status="in_progress"))[:2], (True, False), strict=False):
        admin.complete(job.id, paid=paid)

    for kind in (SCHEDULED, COMPLETED):
        result = hook.poll_job_events(poll_plan(DetectorSettings(kind=kind), states[kind], datetime.now(UTC)))
        step(f"{kind} events (what JobScheduledSensor / JobCompletedSensor push downstream)")
        for event in result.events:
            job, meta = event["job"], event["event"]
            if kind == SCHEDULED and meta["is_reschedule"]:
                what = f"RESCHEDULED from {local(meta['previous_schedule']['scheduled_start'])} to "
                what += local(job["schedule"]["scheduled_start"])
            elif kind == SCHEDULED:
                what = f"NEW BOOKING for {local(job['schedule']['scheduled_start'])}"
            else:
                what = "COMPLETED, " + (
                    "paid" if event["is_paid"] else f"unpaid ({job['outstanding_balance'] / 100:.2f} $ due)"
                )
            print(f"    {job['id']}  {event['customer_name']:<18} {what}")


if __name__ == "__main__":
    raise SystemExit(main())
