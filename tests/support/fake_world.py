"""A tiny in-memory Housecall Pro job list for pure tests of the poll plan (no HTTP).

It answers the two queries the plan makes — newest-first by ``updated_at`` and the upcoming window by
``scheduled_start`` — with offset paging and ``total_items``, and it can misbehave the way a live list
does: return jobs sharing an ``updated_at`` in a new order on every request, and change (or lose) jobs
between two page requests of one poll.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_housecallpro.api.models import Page, format_timestamp

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ts(seconds: int) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


class FakeWorld:
    def __init__(self, *, seed: int = 0, random_ties: bool = True) -> None:
        self.now = 0  # seconds after T0
        self.jobs: dict[str, dict[str, Any]] = {}
        self.rng = random.Random(seed)
        self.random_ties = random_ties
        self.requests = 0
        # Late commits: the next changes are stamped ``late`` seconds ago (a save whose transaction commits only
        # now), never before the job's previous stamp nor before ``not_before``.
        self.late = 0
        self.not_before = 0
        self.between_pages: list[Callable[[], None]] = []  # run one before each answer, in order
        self._n = 0

    # -- the world ------------------------------------------------------------------------------
    def tick(self, seconds: int = 1) -> None:
        self.now += seconds

    def _stamp(self, previous: str | None = None) -> str:
        return max(ts(max(self.now - self.late, self.not_before)), previous or "")

    def _touch(self, job: dict[str, Any]) -> None:
        job["updated_at"] = self._stamp(job.get("updated_at"))

    def book(self, start_h: int | None = 24, *, customer: int = 0, tags: list[str] | None = None) -> str:
        self._n += 1
        job_id = f"job_{self._n:04d}"
        self.jobs[job_id] = {
            "id": job_id,
            "work_status": "needs scheduling",
            "created_at": self._stamp(),
            "updated_at": self._stamp(),
            "schedule": {"scheduled_start": None, "scheduled_end": None, "arrival_window": None},
            "work_timestamps": {"on_my_way_at": None, "started_at": None, "completed_at": None},
            "customer": {"id": f"cus_{customer}", "first_name": "C", "last_name": str(customer)},
            "tags": list(tags or []),
            "notes": [],
        }
        if start_h is not None:
            self.reschedule(job_id, start_h)
        return job_id

    def reschedule(self, job_id: str, start_h: int, *, window: int = 60, bump: bool = True) -> None:
        job = self.jobs[job_id]
        start = T0 + timedelta(hours=start_h)
        job["schedule"] = {
            "scheduled_start": format_timestamp(start),
            "scheduled_end": format_timestamp(start + timedelta(hours=2)),
            "arrival_window": window,
        }
        if job["work_status"] in ("needs scheduling", "user canceled", "pro canceled"):
            job["work_status"] = "scheduled"
        if bump:
            self._touch(job)

    def edit(self, job_id: str) -> None:
        job = self.jobs[job_id]
        job["notes"] = [*job["notes"], {"id": f"nte_{self.now}", "content": "edited"}]
        self._touch(job)

    def start(self, job_id: str) -> None:
        self.jobs[job_id]["work_status"] = "in progress"
        self._touch(self.jobs[job_id])

    def complete(self, job_id: str) -> None:
        job = self.jobs[job_id]
        job["work_status"] = "complete unrated"
        job["work_timestamps"] = {**job["work_timestamps"], "completed_at": ts(self.now)}
        self._touch(job)

    def reopen(self, job_id: str) -> None:
        job = self.jobs[job_id]
        job["work_status"] = "in progress"
        job["work_timestamps"] = {**job["work_timestamps"], "completed_at": None}
        self._touch(job)

    def cancel(self, job_id: str) -> None:
        self.jobs[job_id]["work_status"] = "user canceled"
        self._touch(self.jobs[job_id])

    def delete(self, job_id: str) -> None:
        del self.jobs[job_id]

    # -- the API --------------------------------------------------------------------------------
    def __call__(self, query: Any) -> Page[dict[str, Any]]:
        self.requests += 1
        if self.between_pages:
            self.between_pages.pop(0)()
        rows = list(self.jobs.values())
        tie = {j["id"]: (self.rng.random() if self.random_ties else j["id"]) for j in rows}
        if query.scheduled_start_min is not None:
            lo = format_timestamp(query.scheduled_start_min)
            hi = format_timestamp(query.scheduled_start_max) if query.scheduled_start_max else None
            rows = [
                j
                for j in rows
                if j["work_status"] in ("scheduled", "in progress")
                and j["schedule"]["scheduled_start"]
                and j["schedule"]["scheduled_start"] >= lo
                and (hi is None or j["schedule"]["scheduled_start"] <= hi)
            ]
            rows.sort(key=lambda j: j["id"])
        else:
            rows.sort(key=lambda j: (j["updated_at"], tie[j["id"]]), reverse=True)
        size = query.page_size
        chunk = rows[(query.page - 1) * size : query.page * size]
        pages = max(1, -(-len(rows) // size))
        page = Page[dict[str, Any]](
            page=query.page, page_size=size, total_pages=pages, total_items=len(rows), items=[dict(j) for j in chunk]
        )
        page.served_at = T0 + timedelta(seconds=self.now)  # the server's Date header
        return page
