"""The README's demo (``make demo``): the four example DAGs, end to end, on this machine only.

It starts the local Housecall Pro sandbox with its SMS and SMTP sinks, gives Airflow a private home (a temp
dir with its own SQLite metadata DB), makes things happen in the sandbox — a booking, a reschedule, two
completions (one paid, one not), a web-form lead — runs the example DAGs with ``dag.test()`` after each, and
prints what they did: the texts and emails the sinks received, the CRM rows and the customers created. Then
it stops everything and removes the temp dir (``--keep`` keeps it). Nothing touches a real Housecall Pro
account, phone or mailbox.

Airflow's own output (task logs, and whatever Airflow code logs from other threads) goes to ``airflow.log`` in
the temp dir; a failed run prints its tail.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"
sys.path.insert(0, str(EXAMPLE_DAGS))  # the examples' helpers (hcp_messaging), as Airflow imports them
DEMO_KEY = "sandbox-demo-key"
STARTED = time.monotonic()
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m")
if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
    BOLD = DIM = GREEN = RED = RESET = ""


_terminal: TextIO = sys.stdout  # where say() writes: a copy of the terminal while Quiet sends fds 1 and 2 to the log


def say(text: str = "") -> None:
    print(text, file=_terminal, flush=True)


def step(text: str) -> None:
    say(f"\n{BOLD}==> {text}{RESET}")


def note(text: str) -> None:
    say(f"    {text}")


def elapsed() -> str:
    seconds = int(time.monotonic() - STARTED)
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Quiet:
    """While the demo runs, everything written to file descriptors 1 and 2 goes to a log file: Airflow's logs and task
    output, from whichever thread. The demo's own lines (say()) go to the terminal through a copy of it taken
    first."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (kept open for the demo's lifetime)
        self._saved: tuple[int, int] | None = None

    def start(self) -> None:
        global _terminal
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = os.dup(1), os.dup(2)
        _terminal = os.fdopen(os.dup(1), "w", encoding=sys.stdout.encoding or "utf-8", errors="replace")
        os.dup2(self._log.fileno(), 1)
        os.dup2(self._log.fileno(), 2)

    def stop(self) -> None:
        global _terminal
        if self._saved is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self._saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = None
        _terminal.close()
        _terminal = sys.stdout

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.stop()
        self._log.close()


def configure_airflow(home: Path) -> None:
    """A private AIRFLOW_HOME whose only DAGs are the examples (a local DAG bundle: dag.test() needs one)."""
    for name in [k for k in os.environ if k.startswith("AIRFLOW")]:
        del os.environ[name]  # nothing of the caller's Airflow setup leaks in (or gets touched)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [
                    {
                        "name": "hcp_example_dags",
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(EXAMPLE_DAGS), "refresh_interval": 0},
                    }
                ]
            ),
        }
    )


def load_dag(dag_id: str) -> Any:
    """A fresh copy of ``example_dags/<dag_id>.py`` (dag.test() keeps a run's conf in the DAG object)."""
    spec = importlib.util.spec_from_file_location(f"demo_{dag_id}", EXAMPLE_DAGS / f"{dag_id}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


class Demo:
    def __init__(self, home: Path, quiet: Quiet) -> None:
        self.home, self.quiet = home, quiet
        self.crm_db = home / "crm.db"
        self.seen = {"sms": 0, "email": 0}
        self.names: dict[str, str] = {}  # phone / email -> who

    # -- setup ----------------------------------------------------------------------------------
    def start(self) -> None:
        from hcp_messaging.sinks import SandboxWithSinks, SinkAdmin

        step("Starting the local Housecall Pro sandbox API and its message sinks")
        self.sandbox = SandboxWithSinks(api_key=DEMO_KEY, seed=1, smtp_port=0).start()
        self.admin = SinkAdmin(self.sandbox.url)
        note(f"Housecall Pro API   {self.sandbox.url}   (seeded account: 30 customers, 60 jobs, 5 employees)")
        note(f"SMS sink (Twilio)   {self.sandbox.sms_base_url}")
        note(f"SMTP sink           127.0.0.1:{self.sandbox.smtp_port}")
        os.environ.update(self.sandbox.airflow_connections())
        os.environ["AIRFLOW_CONN_HCP_CRM"] = json.dumps({"conn_type": "sqlite", "host": str(self.crm_db)})
        note("Airflow connections (AIRFLOW_CONN_* env vars): housecallpro_default, sms_default, smtp_default,")
        note(f"hcp_crm (the CRM: SQLite at {self.crm_db})")

        step("airflow connections test housecallpro_default")
        airflow = str(Path(sys.executable).parent / "airflow")
        env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
        result = subprocess.run(
            [airflow, "connections", "test", "housecallpro_default"], env=env, capture_output=True, text=True
        )
        for line in result.stdout.splitlines():
            if line.strip() and not line.startswith("["):
                note(line.strip())
        if result.returncode != 0:
            raise RuntimeError(f"connection test failed:\n{result.stderr[-2000:]}")

        from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

        self.hook = HousecallProHook("housecallpro_default")
        company = self.hook.get_company()
        self.zone = ZoneInfo(company.time_zone or "UTC")
        self.customers_before = {c.id for c in self.hook.iter_customers()}
        for employee in self.hook.list_employees():
            name = f"{employee.first_name} {employee.last_name}, {employee.role or 'crew'}"
            for key in (employee.mobile_number, employee.email):
                if key:
                    self.names[key] = name

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.hook.close()
        with contextlib.suppress(Exception):
            self.admin.close()
        with contextlib.suppress(Exception):
            self.sandbox.stop()

    # -- the world ------------------------------------------------------------------------------
    def customer(self, index: int) -> Any:
        """A seeded customer who can be texted and emailed (and has notifications on)."""
        reachable = [
            c
            for c in self.hook.iter_customers(sort_by="created_at", sort_direction="asc")
            if c.email and c.mobile_number and c.notifications_enabled and not c.company
        ]
        chosen = reachable[index]
        self.names[chosen.mobile_number or ""] = f"{chosen.first_name} {chosen.last_name}, customer"
        self.names[chosen.email or ""] = f"{chosen.first_name} {chosen.last_name}, customer"
        return chosen

    def local(self, days: int, hour: int, hours: int = 2) -> dict[str, str]:
        day = datetime.now(self.zone).date() + timedelta(days=days)
        start = datetime(day.year, day.month, day.day, hour, tzinfo=self.zone)
        return {
            "scheduled_start": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "scheduled_end": (start + timedelta(hours=hours)).astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }

    def when(self, fields: dict[str, str]) -> str:
        start = datetime.fromisoformat(fields["scheduled_start"].replace("Z", "+00:00")).astimezone(self.zone)
        meridiem = "AM" if start.hour < 12 else "PM"
        return f"{start:%a %b} {start.day} at {start.hour % 12 or 12}:{start.minute:02d} {meridiem}"

    # -- running a DAG --------------------------------------------------------------------------
    def run(self, dag_id: str, why: str, conf: dict[str, Any] | None = None) -> Any:
        step(f"Running {dag_id} — {why}")
        started = time.monotonic()
        dag = load_dag(dag_id)
        dag_run = dag.test(run_conf=conf or {})
        tis = dag_run.get_task_instances()
        counts: dict[str, int] = {}
        for ti in tis:
            counts[str(ti.state)] = counts.get(str(ti.state), 0) + 1
        tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        color = GREEN if dag_run.state == "success" else RED
        took = time.monotonic() - started
        note(f"{color}run {dag_run.state}{RESET} in {took:.1f}s ({len(tis)} task instances: {tally})")
        if dag_run.state != "success":
            say(textwrap.indent(self.quiet.tail(), "    | "))
            raise RuntimeError(f"{dag_id} failed; full log: {self.quiet.log_path}")
        self.show_new_messages()
        return dag_run

    def who(self, address: str) -> str:
        digits = address[2:] if address.startswith("+1") else address
        name = self.names.get(digits) or self.names.get(address)
        return f"{address} ({name})" if name else address

    def show_new_messages(self) -> None:
        messages = self.admin.messages()
        new_sms, new_email = messages["sms"][self.seen["sms"] :], messages["email"][self.seen["email"] :]
        self.seen = {"sms": len(messages["sms"]), "email": len(messages["email"])}
        if not new_sms and not new_email:
            note("(no messages sent)")
        for sms in new_sms:
            note(f"{BOLD}text{RESET}  to {self.who(sms['to'])}")
            say(textwrap.indent(textwrap.fill(sms["body"], 96), "          "))
        for mail in new_email:
            note(f"{BOLD}email{RESET} to {', '.join(self.who(t) for t in mail['to'])}: {mail['subject']!r}")
            say(textwrap.indent(mail["text"], "          | ", predicate=lambda _line: True))

    # -- the story ------------------------------------------------------------------------------
    def story(self) -> None:
        since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
        first = {"since": since}  # the sensors' first runs: react to what happens from now on

        say(f"\n{BOLD}--- 1. A new booking -> confirmation text + email, CRM contact{RESET}")
        ava = self.customer(0)
        jake = next(e for e in self.hook.list_employees() if e.first_name == "Jake")
        slot = self.local(3, 9)
        job = self.admin.book_job(
            customer_id=ava.id,
            job_type="HVAC — Tune-Up",
            description="Furnace safety inspection",
            employee_ids=[jake.id],
            **slot,
        )
        step(
            f"In the sandbox: {ava.first_name} {ava.last_name} books an HVAC tune-up for {self.when(slot)} "
            f"({self.zone.key}), tech {jake.first_name} (job #{job['invoice_number']})"
        )
        self.run("hcp_booking_confirmation_crm_sync", "Job scheduled -> confirm and sync the CRM", first)

        say(f"\n{BOLD}--- 2. The customer moves the visit -> notices to the customer and the crew{RESET}")
        self.run(
            "hcp_reschedule_notices",
            "its sensor's first run sees the booking: a new booking, left to the confirmation flow",
            first,
        )
        moved = self.local(5, 13)
        self.admin.reschedule(job["id"], **moved)
        step(f"In the sandbox: {ava.first_name} moves the visit to {self.when(moved)}")
        self.run("hcp_reschedule_notices", "Job scheduled again, a reschedule this time")

        say(f"\n{BOLD}--- 3. Two jobs completed, one paid on site, one not -> thanks, receipt / reminder{RESET}")
        in_progress = list(self.hook.iter_jobs(work_status=["in_progress"]))
        done = []
        for job_model in in_progress:
            c = job_model.customer
            if c and c.email and c.mobile_number and c.notifications_enabled and len(done) < 2:
                done.append(job_model)
                for key in (c.mobile_number, c.email):
                    self.names[key] = f"{c.first_name} {c.last_name}, customer"
        for job_model, paid in zip(done, (True, False), strict=False):
            self.admin.complete(job_model.id, paid=paid)
            who = job_model.customer.display_name if job_model.customer else "?"
            total = (job_model.total_amount or 0) / 100
            step(
                f"In the sandbox: job #{job_model.invoice_number} for {who} is marked complete, "
                + ("paid on site" if paid else f"${total:,.2f} still due")
            )
        self.run("hcp_job_completed_followup", "Job completed -> follow up", {**first, "review_url": REVIEW_URL})

        say(f"\n{BOLD}--- 4. A web-form lead -> a Housecall Pro customer, its ID into the CRM{RESET}")
        step("A visitor submits the website's quote form (the DAG run's conf):")
        note(json.dumps(LEAD))
        self.names[LEAD["email"]] = "the new lead"
        self.names[LEAD["team_email"]] = "the office"
        run = self.run("hcp_web_form_lead_to_customer", "form -> CreateCustomerOperator -> CRM, team email", LEAD)
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id="create_customer", key="return_value")
                .one()
            )
            note(f"create_customer returned the new customer's ID: {XComModel.deserialize_value(row)}")

    def summary(self) -> None:
        messages = self.admin.messages()
        say(f"\n{BOLD}=== Summary ==={RESET}")
        say(
            f"\n{BOLD}Messages sent{RESET} ({len(messages['sms'])} texts, {len(messages['email'])} emails; "
            "caught by the local sinks, nothing left this machine):"
        )
        for sms in messages["sms"]:
            note(f"text  to {self.who(sms['to']):<42} {textwrap.shorten(sms['body'], 70)}")
        for mail in messages["email"]:
            note(f"email to {', '.join(self.who(t) for t in mail['to']):<42} {textwrap.shorten(mail['subject'], 70)}")

        say(f"\n{BOLD}CRM rows{RESET} (table crm_contacts in {self.crm_db.name}, via the hcp_crm connection):")
        with sqlite3.connect(self.crm_db) as db:
            rows = db.execute(
                "SELECT email, first_name || ' ' || last_name, lifecycle_stage, tags, hcp_job_id, scheduled_window,"
                " hcp_customer_id FROM crm_contacts ORDER BY updated_at, email"
            ).fetchall()
        for email, name, stage, tags, job_id, window, customer_id in rows:
            note(f"{email:<34} {name:<18} stage={stage!r}")
            note(f"{'':<34} tags={tags or '-'} | customer {customer_id} | job {job_id or '-'} | window {window or '-'}")

        created = [c for c in self.hook.iter_customers() if c.id not in self.customers_before]
        say(f"\n{BOLD}Customers created in Housecall Pro (the sandbox){RESET}: {len(created)}")
        for c in created:
            note(
                f"{c.id}  {c.first_name} {c.last_name}  {c.email}  {c.mobile_number}  lead source {c.lead_source}, "
                f"tags {c.tags}"
            )
        calls = self.admin.requests()
        say(f"\nThe sandbox answered {len(calls)} Housecall Pro API requests (from the DAGs and this script).")


REVIEW_URL = "https://g.page/r/lonestar-home-services/review"
LEAD = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace.hopper@example.com",
    "mobile_number": "5125550199",
    "company": "Hopper Dental",
    "message": "Our AC makes a rattling noise. Could someone come by next week?",
    "team_email": "dispatch@lonestarhome.example",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temp AIRFLOW_HOME (logs, metadata DB, CRM)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="hcp-demo-"))
    quiet = Quiet(home / "airflow.log")
    configure_airflow(home)
    say(f"{BOLD}Housecall Pro provider for Apache Airflow — demo{RESET}")
    step(f"A private Airflow home: {home}")
    note("SQLite metadata DB, the example DAGs (example_dags/) as its DAG bundle; Airflow's logs go to airflow.log")
    demo: Demo | None = None
    quiet.start()
    try:
        step("Initialising Airflow's metadata database (first time takes a few seconds)")
        started = time.monotonic()
        import airflow
        from airflow.utils import db

        db.initdb()
        note(f"Airflow {airflow.__version__}, database ready in {time.monotonic() - started:.1f}s")
        demo = Demo(home, quiet)
        demo.start()
        demo.story()
        demo.summary()
        step("Cleaning up")
        demo.stop()
    except Exception as exc:
        say(f"\n{RED}Demo failed: {type(exc).__name__}: {exc}{RESET}")
        say(f"(Airflow's log: {quiet.log_path}; kept with the temp dir)")
        if demo is not None:
            demo.stop()
        return 1
    finally:
        quiet.close()  # (also when interrupted: the traceback then reaches the terminal)
    if args.keep:
        note(f"kept {home} (airflow.log, airflow.db, crm.db)")
    else:
        shutil.rmtree(home, ignore_errors=True)
        note(f"sandbox and sinks stopped, {home} removed")
    say(f"\n{GREEN}Done in {elapsed()}.{RESET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
