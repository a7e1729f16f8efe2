"""``make demo`` as a user runs it: ``scripts/demo.py`` in a subprocess (its own Airflow home, sandbox, receiver), on
the Airflow of the running venv (3.3.2 in .venv, 3.0.6 in .venv-floor). It must end "Done", and its part 5 must show
the booking reaching ``hcp_watch_bookings`` through Housecall Pro's signed webhook, with no poll in between."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO


def test_the_demo_runs_to_the_end_and_a_booking_reaches_its_dag_through_the_webhook() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HCP_"))}  # as from a fresh shell
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=REPO,
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out[-4000:]}\n{result.stderr[-4000:]}"
    assert re.search(r"^Done in \d+m\d\ds\.$", out, flags=re.MULTILINE), out[-2000:]
    # Parts 1-4 ran as before (the booking confirmation among them).
    assert "Running hcp_booking_confirmation_crm_sync" in out and "create_customer returned" in out

    part5 = out[out.index("--- 5. Real time") : out.index("=== Summary ===")]
    booked = re.search(r"In the sandbox: (\w+) \w+ books a plumbing repair .*, job #(\d+)\n", part5)
    assert booked, part5
    first_name, job_number = booked.groups()
    # The validation post of the webhook URL recorded nothing; the earlier changes were delivered, signed, and taken.
    assert "the receiver recorded nothing" in out
    assert "signed webhooks to the receiver, each answered 200" in part5
    # The watcher's first poll is its baseline; the booking then reaches it through the webhook, no poll in between.
    assert "webhooks=True, poll_interval=900" in part5
    assert re.search(r"Housecall Pro posted job\.scheduled to the receiver: 200", part5), part5
    fired = re.search(rf"the watcher fired (\d+\.\d)s after the booking: a booking of job #{job_number}", part5)
    assert fired, part5
    assert float(fired.group(1)) < 30  # (about a second; the bound only catches a poll or a 30 s inbox wait)
    assert "through the webhook: no poll in between (GET /jobs since its first poll: 0)" in part5
    # The asset event reached hcp_watch_bookings: its run texted the customer and logged the event in the CRM.
    consumer = part5[part5.index("Running hcp_watch_bookings — the asset event") :]
    assert "run success" in consumer, consumer
    assert re.search(rf"Hi {first_name}, your Plumbing Repair visit is booked for .*\. Job #{job_number}\.", consumer)
    assert "CRM activity log (hcp_job_event_log): job.scheduled (booking)" in consumer
    # Nothing of the webhook signing secret (64 hex digits, random per run) or the API key is printed.
    assert not re.search(r"\b[0-9a-f]{64}\b", out + result.stderr)
    assert "sandbox-demo-key" not in out + result.stderr
