"""Late commits: a change stamped when it is saved, but visible to the API only seconds or minutes later.

Housecall Pro is a web application over a database. A save with callbacks, line items or a bulk import commits
seconds after its ``updated_at`` was stamped, after other changes with newer stamps are already visible; an API
served from a lagging replica shows the same. With late commits on (``POST /_sandbox/late``), a share of job
writes is held back: until its ``visible_at`` the API shows the job as it was before the write (or not at all, for
a new booking). Later writes to a held job commit after it, as a row lock would order them.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .records import Job


def _ceil_second(when: datetime) -> datetime:
    whole = when.replace(microsecond=0)
    return whole if whole == when else whole + timedelta(seconds=1)


@dataclass
class _Held:
    visible_at: datetime
    shown: Job | None  # what the API shows meanwhile: the version before the first held write (None: nothing)


@dataclass
class LateCommits:
    share: float = 0.0
    min_seconds: float = 0.0
    max_seconds: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    held: dict[str, _Held] = field(default_factory=dict)
    late_writes: int = 0

    def configure(self, share: float, min_seconds: float, max_seconds: float, seed: int) -> None:
        if not 0 <= share <= 1:
            raise ValueError("share must be between 0 and 1")
        if not 0 <= min_seconds <= max_seconds:
            raise ValueError("min_seconds and max_seconds must satisfy 0 <= min_seconds <= max_seconds")
        self.share, self.min_seconds, self.max_seconds = share, min_seconds, max_seconds
        self.rng = random.Random(seed)
        self.late_writes = 0

    def snapshot(self, job: Job) -> Job | None:
        """The job as stored before a write (a copy, only while late commits are on)."""
        return copy.deepcopy(job) if self.share > 0 else None

    def written(self, job_id: str, previous: Job | None, now: datetime) -> None:
        """A write to ``job_id`` succeeded; ``previous``: :meth:`snapshot` before it (None for a new booking)."""
        held = self.held.get(job_id)
        if held is not None and held.visible_at <= now:
            del self.held[job_id]
            held = None
        if not (self.share > 0 and self.rng.random() < self.share):
            return  # committed at once — or, behind a held write of the same job, with it
        self.late_writes += 1
        visible_at = now + timedelta(seconds=self.rng.uniform(self.min_seconds, self.max_seconds))
        if held is None:
            self.held[job_id] = _Held(visible_at, previous)
        else:
            held.visible_at = max(held.visible_at, visible_at)

    def forget(self, job_id: str) -> None:
        self.held.pop(job_id, None)

    def view(self, job: Job, now: datetime) -> Job | None:
        """The version of ``job`` the API shows at ``now`` (None: not visible yet)."""
        held = self.held.get(job.id)
        if held is None:
            return job
        if held.visible_at <= now:
            del self.held[job.id]
            return job
        return held.shown

    def summary(self, now: datetime) -> dict[str, object]:
        pending = [h.visible_at for h in self.held.values() if h.visible_at > now]
        return {
            "share": self.share,
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
            "late_writes": self.late_writes,
            "pending": len(pending),
            # rounded up to the second: at this instant every held write is visible
            "visible_by": _ceil_second(max(pending)).strftime("%Y-%m-%dT%H:%M:%SZ") if pending else None,
        }
