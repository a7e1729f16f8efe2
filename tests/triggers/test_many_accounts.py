"""Many Housecall Pro accounts in one event loop, as a triggerer serving an agency's contractors runs them: each
account its own connection (its own API key, some with a company id), every account's requests through one shared
connection pool. The oracle is the sandbox's request log: which account each request authenticated as, the
``X-Company-Id`` and ``Cookie`` it carried, in arrival order."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_housecallpro.api import pool
from airflow_provider_housecallpro.sandbox import SandboxAdmin
from airflow_provider_housecallpro.triggers.jobs import JobEventsTrigger
from airflow_provider_housecallpro.triggers.shared_poller import active_pollers
from tests.conftest import FAST, conn_json
from tests.support.running import until
from tests.support.sensor_harness import SensorHarness, run_trigger_once


@dataclass(frozen=True)
class Account:
    name: str  # the sandbox's name for it (the request log's "account")
    conn_id: str
    api_key: str
    company_id: str | None


@pytest.fixture
def accounts(
    sandbox: Any, admin: SandboxAdmin, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[list[Account]]:
    """Five accounts, each with its own key (registered in the sandbox) and connection; three with a company id."""
    tag = request.node.name.split("[")[0][-12:].replace("_", "")
    made = []
    for i in range(5):
        name = f"{tag}{i}"
        account = Account(name, f"hcp_{name}", f"key-{name}-SECRET", f"co_{name}" if i % 2 == 0 else None)
        admin.add_account(account.name, account.api_key)
        extra = {**FAST, **({"company_id": account.company_id} if account.company_id else {})}
        monkeypatch.setenv(f"AIRFLOW_CONN_{account.conn_id.upper()}", conn_json(sandbox.url, account.api_key, **extra))
        made.append(account)
    yield made


@pytest.fixture
def template(connection: str, admin: SandboxAdmin) -> JobEventsTrigger:
    """A deferred *Job scheduled* sensor's trigger (its state is from a go-live now); every account's triggers are
    made from its kwargs (one world: the accounts differ only by key and company id)."""
    harness = SensorHarness("scheduled", "deferred", connection)
    harness.baseline()
    assert harness.trigger is not None
    return harness.trigger


def on(template: JobEventsTrigger, conn_id: str, interval: float = 0.1, **client: Any) -> JobEventsTrigger:
    classpath, kwargs = template.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    options = {**kwargs["client_options"], **client}
    made: JobEventsTrigger = cls(
        **{
            **kwargs,
            "housecallpro_conn_id": conn_id,
            "timeout_at": None,
            "poll_interval": interval,
            "client_options": options,
        }
    )
    return made


async def job_requests(admin: SandboxAdmin) -> list[dict[str, Any]]:
    return await asyncio.to_thread(admin.requests, "/jobs")


async def until_counts(admin: SandboxAdmin, names: list[str], at_least: int, what: str) -> list[dict[str, Any]]:
    """Wait until each named account has made ``at_least`` requests; the log then."""
    log: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal log
        log = await job_requests(admin)
        counts = Counter(e["account"] for e in log)
        return all(counts[name] >= at_least for name in names)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return log


async def stop(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await until(lambda: not active_pollers() and not pool.open_pools(), "every poller and the pool to close")


def test_accounts_share_one_pool_and_no_request_carries_another_accounts_credentials(
    accounts: list[Account], template: JobEventsTrigger, admin: SandboxAdmin
) -> None:
    names = [a.name for a in accounts]
    by_name = {a.name: a for a in accounts}
    # Retries (429, Retry-After 0) on two accounts, one of them with a cookie in the answer; a redirect on a third.
    admin.fault("status", status=429, retry_after="0", account=names[0], path="/jobs", times=3)
    admin.fault("status", status=429, retry_after="0", set_cookie="session=" + names[1], account=names[1], times=3)
    admin.fault("status", status=302, location="/customers", set_cookie="session=moved", account=names[2], times=1)

    async def scenario() -> dict[str, Any]:
        await asyncio.to_thread(admin.clear_requests)
        tasks = [asyncio.create_task(run_trigger_once(on(template, a.conn_id))) for a in accounts]
        await until(lambda: len(active_pollers()) == len(accounts), "a poller per account")
        pollers = active_pollers()
        # the pool each poller holds, and the one its client sends through (``SharedHttp.send``, bound)
        shared = {id(p.http) for p in pollers} | {id(getattr(p.client._send, "__self__", None)) for p in pollers}
        pools = len(pool.open_pools())
        log = await until_counts(admin, [n for n in names if n != names[2]], 6, "six requests of every account")
        redirected = await tasks[2]  # the redirect was refused: that account's trigger reports it and ends
        running = [t.done() for i, t in enumerate(tasks) if i != 2]
        await stop(tasks)
        return {"log": log, "shared": shared, "pools": pools, "redirected": redirected, "running": running}

    out = asyncio.run(scenario())
    assert len(out["shared"]) == 1 and out["pools"] == 1  # one pool for all five accounts
    log = out["log"]
    # Every request authenticated as one of the five, with exactly that account's company id, and no cookie.
    for entry in log:
        account = by_name[entry["account"]]
        assert entry["headers"]["x-company-id"] == account.company_id, entry
        assert entry["headers"]["cookie"] is None, entry
    order = [e["account"] for e in log]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= len(accounts), order  # interleaved, not one account after another
    statuses = Counter((e["account"], e["status"]) for e in log)
    assert statuses[(names[0], 429)] == 3 and statuses[(names[1], 429)] == 3  # retried with its own key
    assert statuses[(names[2], 302)] == 1
    assert not [e for e in log if e["path"] == "/customers"]  # the redirect was not followed
    payload = out["redirected"]
    assert payload["status"] == "error" and "302" in payload["message"], payload
    assert not any(out["running"])  # the others kept polling
    dumped = json.dumps(payload)
    assert not [a for a in accounts if a.api_key in dumped]


def test_a_429_storm_on_one_account_leaves_anothers_polls_on_cadence(
    accounts: list[Account], template: JobEventsTrigger, admin: SandboxAdmin
) -> None:
    stormed, calm = accounts[0], accounts[1]
    # Every request of the stormed account is refused, each time asking for a one-second pause.
    admin.fault("status", status=429, retry_after="1", account=stormed.name, times=None)

    async def scenario() -> dict[str, Any]:
        await asyncio.to_thread(admin.clear_requests)
        storm = asyncio.create_task(run_trigger_once(on(template, stormed.conn_id, interval=0.2, max_retries=3)))
        steady = asyncio.create_task(run_trigger_once(on(template, calm.conn_id, interval=0.2)))
        stormed_out = await storm
        log = await job_requests(admin)
        steady_running = not steady.done()
        await stop([steady])
        return {"stormed": stormed_out, "log": log, "steady_running": steady_running}

    out = asyncio.run(scenario())
    admin.clear_faults()
    log = out["log"]
    storm = [i for i, e in enumerate(log) if e["account"] == stormed.name]
    assert [log[i]["status"] for i in storm] == [429] * 4  # one try + 3 retries, then it gave up
    # Between two of the stormed account's tries (>= 1 s apart: its Retry-After) the calm one, polling every 0.2 s,
    # went on polling: several of its requests land in every gap, all answered.
    for before, after in itertools.pairwise(storm):
        between = [e for e in log[before + 1 : after] if e["account"] == calm.name]
        assert len(between) >= 2, (before, after, [e["account"] for e in log])
        assert all(e["status"] == 200 for e in between)
    assert out["steady_running"]
    message = out["stormed"]["message"]
    assert out["stormed"]["status"] == "error" and "429" in message and "after 4 attempts" in message, message


def test_a_dead_key_fails_only_its_own_accounts_triggers_with_a_clear_message(
    accounts: list[Account], template: JobEventsTrigger, admin: SandboxAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_conn = "hcp_dead_account"
    monkeypatch.setenv(f"AIRFLOW_CONN_{dead_conn.upper()}", conn_json(admin.base_url, "revoked-SECRET-key", **FAST))
    live = accounts[:3]

    async def scenario() -> dict[str, Any]:
        await asyncio.to_thread(admin.clear_requests)
        alive = [asyncio.create_task(run_trigger_once(on(template, a.conn_id))) for a in live]
        dead = [asyncio.create_task(run_trigger_once(on(template, dead_conn, interval=i))) for i in (0.1, 0.3)]
        failed = await asyncio.gather(*dead)
        before = Counter(e["account"] for e in await job_requests(admin))
        # After the dead account's triggers ended, the others go on polling.
        await until_counts(admin, [a.name for a in live], max(before.values()) + 3, "three more polls each")
        running = [not t.done() for t in alive]
        await stop(alive)
        return {"failed": failed, "running": running}

    out = asyncio.run(scenario())
    assert all(out["running"])
    for payload in out["failed"]:
        assert payload["status"] == "error", payload
        message = payload["message"]
        assert message.startswith("HousecallProAuthError: Housecall Pro GET /jobs answered 401"), message
        assert f"Check the API key in connection {dead_conn!r}" in message, message
        assert "revoked-SECRET-key" not in json.dumps(payload)
