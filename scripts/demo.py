"""The README's demo: start the local sandbox, connect Airflow to it, show upcoming jobs.

Run through ``make demo`` (which creates the virtual environment first). Nothing here touches a real
Housecall Pro account: the API key and the API are the sandbox's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
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
        print(f"    {'when':<18} {'job':<22} {'customer':<22} {'job type':<20} crew")
        for job in jobs:
            start = job.schedule.scheduled_start if job.schedule else None
            when = start.astimezone(zone).strftime("%a %d %b %H:%M") if start else "-"
            customer = job.customer.display_name if job.customer else "-"
            job_type = (job.job_fields.job_type.name if job.job_fields and job.job_fields.job_type else None) or "-"
            crew = ", ".join(e.display_name for e in job.assigned_employees or []) or "unassigned"
            print(f"    {when:<18} {job.id:<22} {customer:<22} {job_type:<20} {crew}")
        from airflow_provider_housecallpro.sandbox import SandboxAdmin

        calls = [f"{r['method']} {r['path']} -> {r['status']}" for r in SandboxAdmin(sandbox.url).requests()]
        step(f"Done: {len(jobs)} upcoming scheduled jobs. The sandbox saw {len(calls)} API requests:")
        print("    " + "\n    ".join(calls))
        hook.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
