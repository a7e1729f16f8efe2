"""The README's demo (``make demo``): the example DAGs, end to end, on this machine only.

It starts the local Housecall Pro sandbox with its SMS and SMTP sinks, gives Airflow a private home (a temp
dir with its own SQLite metadata DB), serves the provider's webhook receiver as Airflow's API server mounts it and
points the sandbox's signed webhooks at it. Then it makes things happen in the sandbox — a booking, a reschedule, two
completions (one paid, one not), a web-form lead — runs the sensor and operator example DAGs with ``dag.test()``
after each, and prints what they did: the texts and emails the sinks received, the CRM rows and the customers
created. Last, in real time: the asset watcher of ``hcp_watch_bookings`` (``webhooks=True``) runs in this process
as the triggerer runs it, a booking reaches it through Housecall Pro's signed webhook within about a second (no poll
in between), and the DAG run that consumes the asset event texts the customer. Then it stops everything and removes
the temp dir (``--keep`` keeps it). Nothing touches a real Housecall Pro account, phone or mailbox.

Airflow's own output (task logs, and what the receiver and the watcher log from their threads) goes to
``airflow.log`` in the temp dir; a failed run prints its tail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"
sys.path.insert(0, str(EXAMPLE_DAGS))  # the examples' helpers (hcp_messaging), as Airflow imports them
DEMO_KEY = "sandbox-demo-key"
HCP_CONN_ID = "housecallpro_default"
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
    output, and what the webhook receiver and the watcher log from their own threads. The demo's own lines (say())
    go to the terminal through a copy of it taken first."""

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


def load_module(dag_id: str) -> ModuleType:
    """A fresh copy of ``example_dags/<dag_id>.py`` (dag.test() keeps a run's conf in the DAG object)."""
    spec = importlib.util.spec_from_file_location(f"demo_{dag_id}", EXAMPLE_DAGS / f"{dag_id}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag(dag_id: str) -> Any:
    return load_module(dag_id).dag


class Receiver:
    """Airflow's API server as Housecall Pro sees it: a FastAPI app with the plugins mounted the way the API server
    mounts them (``init_plugins``: the provider's webhook receiver under ``/housecallpro/webhooks``, recording into
    this demo's metadata DB), on uvicorn on a free loopback port, in a thread."""

    def __init__(self) -> None:
        import uvicorn
        from airflow.api_fastapi.app import init_plugins
        from fastapi import FastAPI

        app = FastAPI()
        init_plugins(app)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()  # connections wait in the backlog until uvicorn accepts them: no start-up wait needed
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="demo-api-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def in_process_supervisor() -> contextlib.AbstractContextManager[None]:
    """Airflow's in-process supervisor (what ``dag.test()`` runs a deferred task's trigger with) as the supervisor of
    the code run inside it: a trigger's Variable and connection calls go through Airflow's execution API to this
    demo's metadata DB, as a triggerer's go through its supervisor."""
    import uuid

    import psutil
    import structlog
    from airflow.sdk.execution_time.supervisor import (
        InProcessSupervisorComms,
        InProcessTestSupervisor,
        set_supervisor_comms,
    )

    supervisor = InProcessTestSupervisor(
        id=uuid.uuid4(),
        pid=os.getpid(),
        process=psutil.Process(),
        process_log=structlog.get_logger(logger_name="triggerer").bind(),
        client=InProcessTestSupervisor._api_client(),
    )
    supervisor.comms = InProcessSupervisorComms(supervisor=supervisor)
    return set_supervisor_comms(supervisor.comms)  # type: ignore[no-any-return]


def variable(key: str) -> Any | None:
    """A Variable's value (JSON) as the metadata DB holds it; None when there is none."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(select(Variable).where(Variable.key == key))
        return json.loads(row.val) if row is not None and row.val else None


async def until(condition: Callable[[], bool], what: str, watcher: asyncio.Task[Any], limit: float = 60.0) -> None:
    """Wait for ``condition`` (checked in a thread: it may read the metadata DB), at most ``limit`` seconds; fail at
    once if the watcher stopped."""
    deadline = time.monotonic() + limit
    while not await asyncio.to_thread(condition):
        if watcher.done():
            watcher.result()  # its exception, if it failed
            raise RuntimeError(f"the watcher stopped before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {limit:.0f}s")
        await asyncio.sleep(0.05)


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
        os.environ.update(self.sandbox.airflow_connections(HCP_CONN_ID))
        # The signing secret Housecall Pro and the receiver share: random, in the connection only, never printed.
        self.webhook_secret = secrets.token_hex(32)
        hcp_conn_var = f"AIRFLOW_CONN_{HCP_CONN_ID.upper()}"
        hcp_conn = json.loads(os.environ[hcp_conn_var])
        hcp_conn["extra"] = {**(hcp_conn.get("extra") or {}), "webhook_secret": self.webhook_secret}
        os.environ[hcp_conn_var] = json.dumps(hcp_conn)
        os.environ["AIRFLOW_CONN_HCP_CRM"] = json.dumps({"conn_type": "sqlite", "host": str(self.crm_db)})
        os.environ["HCP_WEBHOOKS"] = "1"  # hcp_watch_bookings' watcher with webhooks=True (and a 15-minute poll)
        os.environ.pop("HCP_POLL_SECONDS", None)
        note(f"Airflow connections (AIRFLOW_CONN_* env vars): {HCP_CONN_ID} (with a random webhook signing secret),")
        note(f"sms_default, smtp_default, hcp_crm (the CRM: SQLite at {self.crm_db})")

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

        from airflow_provider_housecallpro.webhooks import inbox
        from airflow_provider_housecallpro.webhooks.plugin import URL_PREFIX

        # Set up once, before anything happens, as in a deployment: the first job delivery creates the connection's
        # inbox, which a watcher with webhooks=True reads every second once it exists (every 30 s before that).
        step("Housecall Pro's webhooks -> Airflow's API server (the provider's receiver, an API-server plugin)")
        self.receiver = Receiver()
        self.webhook_url = f"{self.receiver.url}{URL_PREFIX}/{HCP_CONN_ID}"
        note(f"Receiver            {self.webhook_url}")
        note("(the plugin's app mounted as Airflow's API server mounts plugins, served on loopback)")
        self.admin.set_webhooks(self.webhook_url, self.webhook_secret)
        if variable(inbox.variable_key(HCP_CONN_ID)) is not None:
            raise RuntimeError("the receiver recorded Housecall Pro's unsigned URL check")
        note("In the sandbox's webhook settings: that URL and the same signing secret. Its URL check, an unsigned")
        note('{"foo":"bar"}, was answered 2xx (else Housecall Pro refuses the URL); the receiver recorded nothing.')
        note("From now on every change in the account is posted to it, signed.")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.hook.close()
        with contextlib.suppress(Exception):
            self.admin.close()
        with contextlib.suppress(Exception):
            self.sandbox.stop()
        with contextlib.suppress(Exception):
            self.receiver.stop()

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

    # -- 5. real time --------------------------------------------------------------------------
    def real_time(self) -> None:
        from airflow.assets.manager import AssetManager
        from airflow.models.asset import AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        from airflow_provider_housecallpro.webhooks import inbox

        say(f"\n{BOLD}--- 5. Real time: a booking through Housecall Pro's signed webhook -> hcp_watch_bookings{RESET}")
        so_far = self.admin.webhooks(wait=30)["attempts"]  # (waits until every delivery was attempted to its end)
        posted = Counter(a["event"] for a in so_far if a["attempt"] == 1)
        answers = Counter(str(a["status"]) for a in so_far)
        answered = (
            "each answered 200"
            if set(answers) == {"200"}
            else "answered " + ", ".join(f"{n} x {status}" for status, n in sorted(answers.items())) + " (retried)"
        )
        step(f"During parts 1-4 the sandbox posted {sum(posted.values())} signed webhooks to the receiver, {answered}")
        note(", ".join(f"{n} x {event}" if n > 1 else event for event, n in posted.items()))
        key = inbox.variable_key(HCP_CONN_ID)
        held = (variable(key) or {}).get("entries", [])
        note(f"The receiver checked each signature and put the {len(held)} job changes into the connection's inbox,")
        note(f"the Variable {key}, which a watcher with webhooks=True reads every second.")
        note("(Before the first delivery it looks for it every 30 s only: a reason to set the webhook up first.)")

        step("airflow dags reserialize — the DAG processor's part: example_dags/ parsed into the metadata DB")
        airflow = str(Path(sys.executable).parent / "airflow")
        # The DAG processor puts the DAG folder on sys.path (for hcp_messaging); Airflow 3.0's CLI does not.
        path = os.pathsep.join(p for p in (str(EXAMPLE_DAGS), os.environ.get("PYTHONPATH", "")) if p)
        result = subprocess.run(
            [airflow, "dags", "reserialize", "--bundle-name", "hcp_example_dags"],
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow dags reserialize failed:\n{result.stderr[-2000:]}")
        module = load_module("hcp_watch_bookings")
        bookings = module.bookings
        (watcher,) = bookings.watchers
        trigger = watcher.trigger
        note(f"hcp_watch_bookings is scheduled on the asset {bookings.uri}, watched by {type(trigger).__name__}")
        note(
            f"(name={trigger.name!r}, webhooks={trigger.webhooks}, poll_interval={trigger.poll_interval:.0f}): "
            "the example DAG with HCP_WEBHOOKS=1"
        )
        self.run("hcp_watch_bookings", "its first run: no asset event yet (it starts its ledger of processed events)")

        customer = self.customer(1)
        slot = self.local(4, 10)

        def book() -> dict[str, Any]:
            job: dict[str, Any] = self.admin.book_job(
                customer_id=customer.id,
                job_type="Plumbing Repair",
                description="Water heater not heating",
                **slot,
            )
            return job

        step(f"The watcher of {bookings.uri}, run as the triggerer runs it (here in this process)")
        with in_process_supervisor():
            fired, job = asyncio.run(self.watch(trigger, bookings.name, book, customer, slot))

        step(f"The triggerer's part: the watcher's event becomes an asset event of {bookings.uri}")
        with create_session() as session:
            model = session.scalar(select(AssetModel).where(AssetModel.name == bookings.name))
            for payload in fired:
                AssetManager.register_asset_change(
                    asset=model, extra={"from_trigger": True, "payload": payload}, session=session
                )
        note('extra = {"from_trigger": true, "payload": <the event, the job and its customer>}, as')
        note("Trigger.submit_event records it; the scheduler would now start hcp_watch_bookings (dag.test() here)")
        self.run("hcp_watch_bookings", "the asset event -> text the customer, log it in the CRM")
        with sqlite3.connect(self.crm_db) as db:
            rows = db.execute(
                "SELECT event_type, is_reschedule, hcp_job_id, event_id FROM hcp_job_event_log ORDER BY rowid"
            ).fetchall()
        for event_type, is_reschedule, job_id, event_id in rows:
            change = "reschedule" if is_reschedule else "booking"
            note(f"CRM activity log (hcp_job_event_log): {event_type} ({change}) of job {job_id}")
            note(f"{'':<38}event {event_id}")
        if not any(job_id == job["id"] for _, _, job_id, _ in rows):
            raise RuntimeError(f"job {job['id']} did not reach hcp_watch_bookings")

    async def watch(
        self, trigger: Any, asset_name: str, book: Callable[[], dict[str, Any]], customer: Any, slot: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Run the watcher until it has fired for the booking ``book()`` makes after its first poll; stop it."""
        from airflow_provider_housecallpro.events.detector import SCHEDULED
        from airflow_provider_housecallpro.supervisor import settle
        from airflow_provider_housecallpro.triggers import state_admin

        fired: list[tuple[float, dict[str, Any]]] = []
        got_one = asyncio.Event()

        async def run() -> None:
            async for event in trigger.run():
                fired.append((time.monotonic(), event.payload))
                got_one.set()

        polls = self.admin.requests  # GET /jobs, as a poll reads the account (the sensors' ones so far included)
        lists_before = len(await asyncio.to_thread(polls, "/jobs"))
        started = time.monotonic()
        task = asyncio.create_task(run(), name="hcp_watch_bookings watcher")
        try:
            baseline: dict[str, Any] = {}

            def polled() -> bool:  # the state its first poll stored (as `housecallpro watcher-state show` reads it)
                for store in state_admin.show(trigger.name, SCHEDULED, asset_name)["stores"]:
                    if store.get("polled"):
                        baseline.update(store)
                return bool(baseline)

            await until(polled, "first poll", task)
            lists_at_live = len(await asyncio.to_thread(polls, "/jobs"))
            note(
                f"its first poll, {time.monotonic() - started:.1f}s after it started "
                f"({lists_at_live - lists_before} x GET /jobs), is its baseline: {baseline['tracked_jobs']} upcoming "
                "jobs, nothing fires."
            )
            note(
                f"Its next poll is due in {trigger.poll_interval / 60:.0f} minutes: until then, changes come only "
                "through the webhook."
            )

            booked_at = time.monotonic()
            job = await asyncio.to_thread(book)
            step(
                f"In the sandbox: {customer.first_name} {customer.last_name} books a plumbing repair for "
                f"{self.when(slot)} ({self.zone.key}), job #{job['invoice_number']}"
            )
            waiting = asyncio.ensure_future(got_one.wait())
            done, _ = await asyncio.wait({waiting, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if task in done:
                task.result()
                raise RuntimeError("the watcher stopped before the booking reached it")
            if not done:
                raise TimeoutError("the booking did not reach the watcher within 60s")
            at, payload = fired[0]
            attempts = (await asyncio.to_thread(self.admin.webhooks, 10))["attempts"]
            delivery = [a for a in attempts if a["job_id"] == job["id"]]
            lists_now = len(await asyncio.to_thread(polls, "/jobs"))
            note(
                "Housecall Pro posted "
                + ", ".join(f"{a['event']} to the receiver: {a['status']}" for a in delivery)
                + " (signature checked, into the inbox)"
            )
            kind = "reschedule" if payload["event"]["is_reschedule"] else "booking"
            note(
                f"{GREEN}the watcher fired {at - booked_at:.1f}s after the booking{RESET}: a {kind} of job "
                f"#{payload['job'].get('invoice_number')} for {payload['customer_name']}"
            )
            note(
                f"through the webhook: no poll in between (GET /jobs since its first poll: {lists_now - lists_at_live})"
            )
            if payload["job"]["id"] != job["id"] or lists_now != lists_at_live:
                raise RuntimeError("the booking reached the watcher by a poll, not through the webhook")
            return [p for _, p in fired], job
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await settle()
            note("watcher stopped")

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
        deliveries = [a for a in self.admin.webhooks()["attempts"] if a["attempt"] == 1]
        say(f"\nThe sandbox answered {len(calls)} Housecall Pro API requests (from the DAGs and this script)")
        say(f"and posted {len(deliveries)} signed webhook deliveries to Airflow's API server (the receiver).")


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
        demo.real_time()
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
        note(f"sandbox, sinks and webhook receiver stopped, {home} removed")
    say(f"\n{GREEN}Done in {elapsed()}.{RESET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
