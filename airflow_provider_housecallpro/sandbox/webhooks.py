"""The sandbox sends webhooks like Housecall Pro: one URL and signing secret per account, set through the admin
API (``POST /_sandbox/webhooks``), which first posts Housecall Pro's **unsigned** ``{"foo":"bar"}`` and refuses the
URL unless it answers 2xx; then a signed delivery for every change the admin API makes.

Deliveries (``{"event", "event_occurred_at", "company_id", "<resource>": {...}}``, signed as
:mod:`airflow_provider_housecallpro.webhooks.signature` checks) leave from one background thread, in order, each
retried on a non-2xx answer or a connection error up to ``max_attempts`` times (``retry_delay`` doubling), then
dropped ("retries exhausted"). Options for tests: ``duplicates`` (every delivery is sent twice), ``hold`` (keep
deliveries until ``POST /_sandbox/webhooks/release`` with ``{"order": "fifo" | "reverse"}``: out-of-order
delivery), ``validate: false`` (skip the URL check: point the URL at a receiver that is down).

``GET /_sandbox/webhooks`` shows the settings (never the secret) and every attempt made: ``{"event", "job_id",
"attempt", "status"}`` (``status`` = the HTTP status, or ``"error"`` for a connection failure).

Which event each admin operation sends: book → ``job.scheduled`` (``job.created`` without a schedule), reschedule →
``job.appointment.rescheduled`` (the appointment, with its ``job_id``; the job is read with ``GET /jobs/{id}``),
edit / touch → ``job.updated``, start → ``job.started``, complete → ``job.completed``, cancel → ``job.canceled``,
delete → ``job.deleted``, a new customer → ``customer.created``. The ``mutate`` fault sends nothing.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from airflow_provider_housecallpro.webhooks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

from .clock import fmt_ts
from .records import WorldError

JSON = dict[str, Any]
OP_EVENTS = {
    "edit": "job.updated",
    "touch": "job.updated",
    "start": "job.started",
    "complete": "job.completed",
    "cancel": "job.canceled",
    "delete": "job.deleted",
}
_SETTINGS = {"url", "secret", "duplicates", "hold", "max_attempts", "retry_delay", "validate"}


@dataclass
class Settings:
    url: str
    secret: str = field(repr=False)
    duplicates: bool = False
    hold: bool = False
    max_attempts: int = 5
    retry_delay: float = 0.5

    def public(self) -> JSON:
        return {
            "url": self.url,
            "duplicates": self.duplicates,
            "hold": self.hold,
            "max_attempts": self.max_attempts,
            "retry_delay": self.retry_delay,
        }


class WebhookSender:
    def __init__(self, company_id: Callable[[], str], now: Callable[[], datetime]) -> None:
        self._company_id = company_id
        self._now = now
        self._lock = threading.Lock()
        self.settings: Settings | None = None
        self._queue: queue.Queue[tuple[Settings, JSON] | None] = queue.Queue()
        self._held: list[JSON] = []
        self.attempts: list[JSON] = []
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=10.0)

    # -- settings ---------------------------------------------------------------------------------
    def configure(self, body: Mapping[str, Any]) -> JSON:
        unknown = sorted(set(body) - _SETTINGS)
        if unknown:
            raise WorldError(422, f"unknown webhook setting(s): {', '.join(unknown)}")
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise WorldError(422, "url: must be an http(s) URL")
        if not isinstance(secret, str) or not secret:
            raise WorldError(422, "secret: must be a non-empty string")
        attempts, delay = body.get("max_attempts", 5), body.get("retry_delay", 0.5)
        if not isinstance(attempts, int) or not 1 <= attempts <= 20:
            raise WorldError(422, "max_attempts: must be a whole number from 1 to 20")
        if not isinstance(delay, int | float) or not 0 <= delay <= 60:
            raise WorldError(422, "retry_delay: must be seconds from 0 to 60")
        settings = Settings(url, secret, bool(body.get("duplicates")), bool(body.get("hold")), attempts, float(delay))
        if body.get("validate", True):
            try:  # Housecall Pro's URL check: unsigned, and the URL is refused unless it answers 2xx
                status = self._client.post(url, content=b'{"foo":"bar"}', headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                raise WorldError(422, f"url: the check post failed ({type(exc).__name__})") from None
            if not 200 <= status.status_code < 300:
                raise WorldError(422, f"url: the check post was answered {status.status_code}, not 2xx")
        with self._lock:
            self.settings = settings
            if not settings.hold:
                self._release_locked("fifo")
        return self.describe()

    def disable(self, forget: bool = False) -> None:
        with self._lock:
            self.settings = None
            self._held.clear()
            if forget:
                self.attempts.clear()

    def describe(self) -> JSON:
        with self._lock:
            return {
                "settings": None if self.settings is None else self.settings.public(),
                "held": len(self._held),
                "attempts": list(self.attempts),
            }

    def release(self, order: str) -> int:
        if order not in ("fifo", "reverse"):
            raise WorldError(422, "order: must be 'fifo' or 'reverse'")
        with self._lock:
            return self._release_locked(order)

    def _release_locked(self, order: str) -> int:
        held, self._held = self._held, []
        if order == "reverse":
            held.reverse()
        if self.settings is not None:
            for body in held:
                self._enqueue(self.settings, body)
        return len(held)

    # -- sending ----------------------------------------------------------------------------------
    def job_changed(self, op: str, job: JSON) -> None:
        if op == "book":
            event = "job.scheduled" if (job.get("schedule") or {}).get("scheduled_start") else "job.created"
        elif op == "reschedule":
            schedule = job.get("schedule") or {}
            appointment = {
                "id": f"appt_{job['id']}",
                "job_id": job["id"],
                "start_time": schedule.get("scheduled_start"),
                "end_time": schedule.get("scheduled_end"),
                "arrival_window_minutes": schedule.get("arrival_window"),
            }
            self.send("job.appointment.rescheduled", "appointment", appointment)
            return
        else:
            event = OP_EVENTS.get(op, "job.updated")
        self.send(event, "job", job)

    def send(self, event: str, resource: str, record: JSON) -> None:
        with self._lock:
            if self.settings is None:
                return
            body = {
                "event": event,
                "event_occurred_at": fmt_ts(self._now()),
                "company_id": self._company_id(),
                resource: record,
            }
            if self.settings.hold:
                self._held.append(body)
            else:
                self._enqueue(self.settings, body)

    def _enqueue(self, settings: Settings, body: JSON) -> None:
        for _ in range(2 if settings.duplicates else 1):
            self._idle.clear()
            self._queue.put((settings, body))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="hcp-sandbox-webhooks", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=5.0)
            except queue.Empty:
                return
            if item is None:
                return
            self._deliver(*item)
            if self._queue.empty():
                self._idle.set()

    def _deliver(self, settings: Settings, body: JSON) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        record = body.get("job") or body.get("appointment") or {}
        job_id = record.get("job_id") or record.get("id") if body["event"].startswith("job.") else None
        delay = settings.retry_delay
        for attempt in range(1, settings.max_attempts + 1):
            stamp = str(int(time.time()))
            headers = {
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(settings.secret, stamp, raw),
                "content-type": "application/json",
            }
            try:
                status: int | str = self._client.post(settings.url, content=raw, headers=headers).status_code
            except httpx.HTTPError:
                status = "error"
            with self._lock:
                self.attempts.append({"event": body["event"], "job_id": job_id, "attempt": attempt, "status": status})
            if isinstance(status, int) and 200 <= status < 300:
                return
            if attempt < settings.max_attempts:
                time.sleep(delay)  # the sender's own back-off, in its own thread
                delay *= 2

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued delivery has been attempted to the end (admin ``GET /webhooks?wait=``)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._client.close()
