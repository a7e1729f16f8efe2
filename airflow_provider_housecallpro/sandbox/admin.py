"""A small synchronous client for the sandbox's ``/_sandbox`` admin API."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

JSON = dict[str, Any]


class SandboxAdminError(RuntimeError):
    """The admin API answered non-2xx."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"sandbox admin API answered {status_code}: {body}")
        self.status_code = status_code
        self.body = body


class SandboxAdmin:
    """Drive the sandbox world: reset, clock, faults, request log and job operations."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=f"{self.base_url}/_sandbox", timeout=timeout)

    def _call(self, method: str, path: str, body: JSON | None = None, params: JSON | None = None) -> Any:
        response = self._client.request(method, path, json=body, params=params)
        if not response.is_success:
            raise SandboxAdminError(response.status_code, response.text)
        return response.json()

    @staticmethod
    def _given(**values: Any) -> JSON:
        return {k: v for k, v in values.items() if v is not None}

    # world
    def reset(self, seed: int | None = None, tie_order: str | None = None) -> JSON:
        """A fresh world; ``tie_order="random"`` returns jobs that share a sort key in a new order each time."""
        result: JSON = self._call("POST", "/reset", self._given(seed=seed, tie_order=tie_order))
        return result

    def all_jobs(self) -> list[JSON]:
        """Every job, unpaged and unfaulted (what a test oracle compares against)."""
        result: list[JSON] = self._call("GET", "/jobs")["jobs"]
        return result

    def state(self) -> JSON:
        result: JSON = self._call("GET", "/state")
        return result

    def clock(self, freeze: bool | None = None, set: str | None = None, advance_seconds: float | None = None) -> str:
        """Configure the clock; returns its ``now`` (``YYYY-MM-DDTHH:MM:SSZ``)."""
        body = self._given(freeze=freeze, set=set, advance_seconds=advance_seconds)
        now: str = self._call("POST", "/clock", body)["now"]
        return now

    # request log
    def late(self, share: float, min_seconds: float = 5.0, max_seconds: float = 60.0, seed: int | None = None) -> JSON:
        """Late commits: ``share`` of job writes become visible ``min_seconds``-``max_seconds`` after their stamp."""
        body = self._given(share=share, min_seconds=min_seconds, max_seconds=max_seconds, seed=seed)
        return self._call("POST", "/late", body)  # type: ignore[no-any-return]

    def requests(self, path: str | None = None, method: str | None = None) -> list[JSON]:
        params = self._given(path=path, method=method)
        entries: list[JSON] = self._call("GET", "/requests", params=params)["requests"]
        return entries

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    # faults
    def add_account(self, name: str, api_key: str) -> None:
        """Another account on the sandbox's world: requests with ``api_key`` are logged as ``name`` and match the
        faults queued with ``account=name``."""
        self._call("POST", "/accounts", {"name": name, "api_key": api_key})

    def fault(self, kind: str, **params: Any) -> JSON:
        """Queue one fault rule, e.g. ``fault("status", status=429, retry_after="2", path="/jobs")``."""
        rule: JSON = self._call("POST", "/faults", {"kind": kind, **params})
        return rule

    def faults(self) -> list[JSON]:
        rules: list[JSON] = self._call("GET", "/faults")["faults"]
        return rules

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    # job operations (each returns the full job as GET /jobs/{id} would)
    def book_job(self, **kw: Any) -> JSON:
        job: JSON = self._call("POST", "/jobs", kw)
        return job

    def _op(self, job_id: str, op: str, body: JSON) -> JSON:
        job: JSON = self._call("POST", f"/jobs/{job_id}/{op}", body)
        return job

    def reschedule(self, job_id: str, **kw: Any) -> JSON:
        return self._op(job_id, "reschedule", kw)

    def edit(self, job_id: str, **kw: Any) -> JSON:
        return self._op(job_id, "edit", kw)

    def start(self, job_id: str, **kw: Any) -> JSON:
        return self._op(job_id, "start", kw)

    def complete(self, job_id: str, paid: bool = True, rated: bool = False, **kw: Any) -> JSON:
        return self._op(job_id, "complete", {"paid": paid, "rated": rated, **kw})

    def cancel(self, job_id: str, by: str = "user", **kw: Any) -> JSON:
        return self._op(job_id, "cancel", {"by": by, **kw})

    def delete(self, job_id: str) -> JSON:
        """Hard-delete a job: it leaves every list and ``GET /jobs/{id}`` answers 410."""
        return self._op(job_id, "delete", {})

    def touch(self, job_id: str, **kw: Any) -> JSON:
        return self._op(job_id, "touch", kw)

    def bulk_jobs(self, count: int, **kw: Any) -> int:
        created: int = self._call("POST", "/bulk_jobs", {"count": count, **kw})["created"]
        return created

    def create_customer(self, **kw: Any) -> JSON:
        customer: JSON = self._call("POST", "/customers", kw)
        return customer

    # -- webhooks (sandbox/webhooks.py) ----------------------------------------------------------
    def set_webhooks(self, url: str, secret: str, **settings: Any) -> JSON:
        """Set the webhook URL and secret (the sandbox posts the unsigned URL check first, like Housecall Pro)."""
        return self._call("POST", "/webhooks", {"url": url, "secret": secret, **settings})  # type: ignore[no-any-return]

    def webhooks(self, wait: float | None = None) -> JSON:
        """Settings and every delivery attempt; ``wait``: first wait this long for the queue to drain."""
        params = {"wait": wait} if wait else None
        return self._call("GET", "/webhooks", params=params)  # type: ignore[no-any-return]

    def release_webhooks(self, order: str = "fifo") -> int:
        return int(self._call("POST", "/webhooks/release", {"order": order})["released"])

    def disable_webhooks(self) -> JSON:
        return self._call("DELETE", "/webhooks")  # type: ignore[no-any-return]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SandboxAdmin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
