"""The shared poller's semantics, with real triggers in one event loop against the sandbox: subscribers with
different filters and cursors each get exactly their events once; idle polls are shared; a late joiner with an
older cursor still gets its events; one that leaves stops nothing for the others; the last one out closes it."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from airflow_provider_housecallpro.triggers.jobs import JobEventsTrigger
from airflow_provider_housecallpro.triggers.shared_poller import active_pollers
from tests.support.jobs import a_customer, slot
from tests.support.running import until
from tests.support.sensor_harness import SensorHarness, run_trigger_once


def long_lived(trigger: JobEventsTrigger, interval: float = 0.1) -> JobEventsTrigger:
    """The same trigger as the triggerer would re-create it, without a deadline and polling fast."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    made: JobEventsTrigger = cls(**{**kwargs, "timeout_at": None, "poll_interval": interval})
    return made


def test_subscribers_share_polls_and_each_gets_exactly_its_events(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    ann, bob = a_customer(hook, 0), a_customer(hook, 1)
    harnesses = {
        "ann": SensorHarness("scheduled", "deferred", connection, filters={"customer_ids": [ann]}),
        "bob": SensorHarness("scheduled", "deferred", connection, filters={"customer_ids": [bob]}),
        "all": SensorHarness("scheduled", "deferred", connection),
    }
    for h in harnesses.values():
        h.baseline()
    triggers = {name: long_lived(h.trigger) for name, h in harnesses.items() if h.trigger is not None}
    # A late joiner whose state is from this go-live too: it joins after the booking, with an older cursor.
    late = long_lived(harnesses["all"].trigger)  # type: ignore[arg-type]

    async def scenario() -> dict[str, Any]:
        tasks = {name: asyncio.create_task(run_trigger_once(t)) for name, t in triggers.items()}
        await until(lambda: bool(active_pollers()) and len(active_pollers()[0].subscribers) == 3, "3 subscribers")
        poller = active_pollers()[0]
        await until(lambda: all(s.polls >= 2 for s in poller.subscribers), "two polls each")
        # Idle: one request per tick serves all three subscribers.
        admin.clear_requests()
        before = [s.polls for s in poller.subscribers]
        await until(lambda: all(s.polls >= b + 3 for s, b in zip(poller.subscribers, before, strict=True)), "3 ticks")
        ticks = min(s.polls - b for s, b in zip(poller.subscribers, before, strict=True))
        requests = len(admin.requests(path="/jobs"))
        booked = admin.book_job(customer_id=ann, **slot(2))
        got_ann = await tasks.pop("ann")
        got_all = await tasks.pop("all")
        late_task = asyncio.create_task(run_trigger_once(late))
        got_late = await late_task
        # Bob's trigger saw nothing; it leaves (the task is cancelled, as when its task is cleared).
        assert not tasks["bob"].done()
        tasks["bob"].cancel()
        await asyncio.gather(tasks["bob"], return_exceptions=True)
        await until(lambda: not active_pollers(), "the poller to stop")
        return {
            "booked": booked,
            "ann": got_ann,
            "all": got_all,
            "late": got_late,
            "requests": requests,
            "ticks": ticks,
            "closed": poller.http is not None and poller.http.closed,
        }

    out = asyncio.run(scenario())
    booked = out["booked"]["id"]
    for name in ("ann", "all", "late"):
        payload = out[name]
        assert payload["status"] == "success", payload
        assert [e["job"]["id"] for e in payload["events"]] == [booked], name
    assert out["requests"] <= out["ticks"] + 1, out  # shared: not 3 requests a tick
    assert out["closed"]


def test_an_idle_accounts_polls_ask_for_one_job_and_a_change_is_still_found(
    hook: HousecallProHook, admin: SandboxAdmin, connection: str
) -> None:
    """After its first poll, the poller asks for as many jobs as its last pass saw within the look-back, plus one:
    one job while the account is quiet (one request per poll, ~2.7 KB instead of ~27 KB). A booking then makes that
    page too small to show the floor: the pass reads on, the booking fires once, and the next first pages hold it."""
    harness = SensorHarness("scheduled", "deferred", connection)
    harness.baseline()
    assert harness.trigger is not None
    trigger = long_lived(harness.trigger)

    def page_sizes() -> list[tuple[str, str]]:
        return [
            (dict(map(tuple, e["query"]))["page"], dict(map(tuple, e["query"]))["page_size"])
            for e in admin.requests(path="/jobs")
            if dict(map(tuple, e["query"])).get("sort_by") == "updated_at"
        ]

    async def scenario() -> dict[str, Any]:
        task = asyncio.create_task(run_trigger_once(trigger))
        await until(lambda: bool(active_pollers()) and active_pollers()[0].subscribers, "the subscriber")
        poller = active_pollers()[0]
        sub = poller.subscribers[0]
        await until(lambda: sub.polls >= 2, "two polls")
        admin.clear_requests()
        polls = sub.polls
        await until(lambda: sub.polls >= polls + 3, "three more polls")
        quiet = page_sizes()
        quiet_polls = sub.polls - polls
        admin.clear_requests()
        booked = admin.book_job(customer_id=a_customer(hook, 0), **slot(2))
        payload = await task
        return {"quiet": quiet, "quiet_polls": quiet_polls, "booked": booked, "payload": payload}

    out = asyncio.run(scenario())
    assert out["quiet"] and set(out["quiet"]) == {("1", "1")}, out["quiet"]
    assert len(out["quiet"]) <= out["quiet_polls"] + 1  # one request per poll
    assert out["payload"]["status"] == "success", out["payload"]
    assert [e["job"]["id"] for e in out["payload"]["events"]] == [out["booked"]["id"]]
