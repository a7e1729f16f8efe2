"""What polling costs while nothing happens: N of our job triggers vs N of the http provider's HttpEventTrigger,
polling the same local sandbox, in one event loop as one triggerer runs them. Not part of the test suite.

    make bench            # or: .venv/bin/python benchmarks/bench_triggers.py [--repeat 3] [--quick]

Each (kind, N) scenario runs in a fresh subprocess (clean RSS), R times; the table shows min / median / max.
"one account": N triggers on one connection; "N accounts": one trigger on each of N connections, each its own API
key (registered in the sandbox, whose request log then names the account of every request).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hcp-bench-"))
sys.path.insert(0, str(HERE))
KEY = "bench-key"
IDLE_QUERY = "jobs?page=1&page_size=1&sort_by=updated_at&sort_direction=desc"  # our steady idle poll


def live_state(url: str) -> dict[str, Any]:
    """A *Job scheduled* state as a sensor's first run leaves it (go-live now: every job there is history, with its
    record), so a trigger resumed from it polls the account as it is instead of firing for every job the bench's
    world was just seeded with (they are within the look-back)."""
    from datetime import UTC, datetime

    import httpx

    from airflow_provider_housecallpro.api.core import date_header
    from airflow_provider_housecallpro.api.models import parse_raw_page
    from airflow_provider_housecallpro.events.detector import SCHEDULED, DetectorSettings
    from airflow_provider_housecallpro.events.poll import drive, poll_plan

    def fetch(query: Any) -> Any:
        response = httpx.get(f"{url}/jobs", params=query.to_params(), headers={"Authorization": f"Token {KEY}"})
        page = parse_raw_page(response.raise_for_status().json(), "jobs")
        page.served_at = date_header(response.headers.get("Date"))
        return page

    now = datetime.now(UTC)
    plan = poll_plan(DetectorSettings(kind=SCHEDULED, page_size=200), None, now, since=now)
    return drive(plan, fetch).state.to_json()


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


# -- one scenario, in its own process ------------------------------------------------------------
async def scenario(kind: str, n: int, accounts: int, interval: float, rounds: int, url: str) -> dict[str, Any]:
    from airflow_provider_housecallpro.sandbox import SandboxAdmin

    admin = SandboxAdmin(url)
    stalls: list[float] = []
    phase = {"name": "start"}
    worst = {"start": 0.0, "steady": 0.0}

    async def monitor() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            late = (loop.time() - before - 0.005) * 1000
            stalls.append(late)
            worst[phase["name"]] = max(worst[phase["name"]], late)

    import gc

    gc_worst = {"start": 0.0, "steady": 0.0}
    gc_began = [0.0]

    def gc_watch(event: str, info: dict[str, Any]) -> None:  # the stalls' share that is the garbage collector's
        if event == "start":
            gc_began[0] = time.perf_counter()
        else:
            pause = (time.perf_counter() - gc_began[0]) * 1000
            gc_worst[phase["name"]] = max(gc_worst[phase["name"]], pause)
            if pause > 20 and os.environ.get("HCP_BENCH_OBJECTS"):
                print(f"gc {phase['name']} {pause:.0f} ms {info}", file=sys.stderr)

    gc.callbacks.append(gc_watch)
    state = await asyncio.to_thread(live_state, url) if kind == "ours" else None

    def make(i: int) -> Any:
        conn = f"bench_{i % accounts}"
        if kind == "ours":
            from airflow_provider_housecallpro.triggers.jobs import JobScheduledTrigger

            assert state is not None
            return JobScheduledTrigger(
                housecallpro_conn_id=conn,
                state=state,
                poll_interval=interval,
                detector_options={"reconcile_interval": 86_400},
            )
        from airflow.providers.http.triggers.http import HttpEventTrigger

        return HttpEventTrigger(
            response_check_path="_http_check.never",
            http_conn_id=f"http_{conn}",
            endpoint=IDLE_QUERY,
            headers={"Authorization": f"Token {account_key(i % accounts)}"},
            poll_interval=interval,
        )

    async def drain(trigger: Any) -> None:
        async for _ in trigger.run():
            pass

    # Warm up as a running triggerer is: modules imported, a connection looked up, a poll made.
    warm = asyncio.create_task(drain(make(0)))
    await asyncio.sleep(interval * 1.2)
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)
    mon = asyncio.create_task(monitor())
    cpu_idle0 = time.process_time()
    await asyncio.sleep(interval)
    idle_cpu_rate = (time.process_time() - cpu_idle0) / interval  # the monitor's own cost, subtracted
    rss0 = rss_kib()
    if os.environ.get("HCP_BENCH_TRACEMALLOC"):  # where each trigger's memory goes (diagnosis, not the table)
        import tracemalloc

        tracemalloc.start(8)
        snap0 = tracemalloc.take_snapshot()
    worst["start"] = gc_worst["start"] = 0.0
    await asyncio.to_thread(admin.clear_requests)
    tasks = []
    for i in range(n):  # as the triggerer's create_triggers does: yield to the loop around each trigger it makes
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(drain(make(i))))
    # Start-up: at least 1.5 intervals, and until every account has made a request (a thousand accounts' connection
    # lookups take a while: each masks its key, and Airflow's masker recompiles every key's pattern per new key).
    started = time.monotonic()
    await asyncio.sleep(interval * 1.5)
    while len({e["account"] for e in await asyncio.to_thread(admin.requests, "/jobs")}) < accounts:
        assert time.monotonic() - started < 600, "not every account polled within 10 minutes"
        await asyncio.sleep(interval / 2)
    startup_s = time.monotonic() - started
    phase["name"] = "steady"
    await asyncio.sleep(interval)
    await asyncio.to_thread(admin.clear_requests)
    if os.environ.get("HCP_BENCH_PROFILE"):  # where the steady phase's CPU goes (diagnosis, not the table)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(interval * rounds)
    cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
    if os.environ.get("HCP_BENCH_PROFILE"):
        profiler.disable()
        profiler.dump_stats(os.environ["HCP_BENCH_PROFILE"])
    log = await asyncio.to_thread(admin.requests, "/jobs")
    requests = len(log)
    per_account = {f"bench_{i}": 0 for i in range(1, accounts)} | {"default": 0}
    for entry in log:
        per_account[entry["account"]] = per_account.get(entry["account"], 0) + 1
    if accounts == n:  # one trigger per account: each account's cadence
        fewest, most = cadence(log, per_account, interval, elapsed)
    else:  # many triggers share an account: its requests per interval
        fewest = min(per_account.values()) * interval / elapsed
        most = max(per_account.values()) * interval / elapsed
    rss1 = rss_kib()
    if os.environ.get("HCP_BENCH_TRACEMALLOC"):
        top = tracemalloc.take_snapshot().compare_to(snap0, "traceback")[:25]
        for stat in top:
            print(
                f"{stat.size_diff / n / 1024:.2f} KiB/trigger",
                *stat.traceback.format()[-8:],
                sep="\n  ",
                file=sys.stderr,
            )
    if os.environ.get("HCP_BENCH_OBJECTS"):  # what the garbage collector walks: the most common kinds of object
        from collections import Counter

        kinds = Counter(type(o).__qualname__ for o in gc.get_objects())
        print(len(gc.get_objects()), kinds.most_common(40), file=sys.stderr)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    mon.cancel()
    intervals = elapsed / interval
    polls = n * intervals
    return {
        "requests_per_interval": requests / intervals,
        "account_fewest": fewest,
        "account_most": most,
        "rss_per_trigger_kib": (rss1 - rss0) / n,
        "stall_start_ms": worst["start"],
        "stall_steady_ms": worst["steady"],
        "cpu_per_idle_poll_ms": max(cpu - idle_cpu_rate * elapsed, 0.0) * 1000 / polls,
        "startup_s": startup_s,
        "gc_start_ms": gc_worst["start"],
        "gc_steady_ms": gc_worst["steady"],
    }


def cadence(
    log: list[dict[str, Any]], per_account: dict[str, int], interval: float, elapsed: float
) -> tuple[float, float]:
    """Requests per interval of the account with the fewest and of the one with the most, from the gaps between
    each account's consecutive requests (``interval`` / its longest gap, ``interval`` / its shortest): one request
    per interval, on cadence, is 1.00 / 1.00. Counting each account's requests in the window instead would count
    an account whose phase falls on the window's edge once too often or too rarely. An account with fewer than two
    requests in the window counts as its requests per interval."""
    from datetime import datetime

    times: dict[str, list[float]] = {}
    for entry in log:
        times.setdefault(entry["account"], []).append(datetime.fromisoformat(entry["received_at"]).timestamp())
    fewest, most = float("inf"), 0.0
    for account, count in per_account.items():
        stamps = sorted(times.get(account, []))
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        if not gaps:
            rate = count * interval / elapsed
            fewest, most = min(fewest, rate), max(most, rate)
            continue
        fewest, most = min(fewest, interval / max(gaps)), max(most, interval / max(min(gaps), 1e-6))
    return fewest, most


def run_scenario(args: argparse.Namespace) -> None:
    out = asyncio.run(scenario(args.kind, args.n, args.accounts, args.interval, args.rounds, args.url))
    print(json.dumps(out))


# -- the whole benchmark -------------------------------------------------------------------------
def account_key(i: int) -> str:
    """Account 0 uses the sandbox's own key; every other account has a key of its own (registered in the sandbox
    by :func:`register_accounts`), as an agency's contractors each have theirs."""
    return KEY if i == 0 else f"{KEY}-{i}"


def register_accounts(url: str, accounts: int) -> None:
    from airflow_provider_housecallpro.sandbox import SandboxAdmin

    with SandboxAdmin(url) as admin:
        for i in range(1, accounts):
            admin.add_account(f"bench_{i}", account_key(i))


def connections(url: str, accounts: int) -> dict[str, str]:
    env = {}
    for i in range(accounts):
        conn = {"conn_type": "housecallpro", "host": url, "password": account_key(i)}
        env[f"AIRFLOW_CONN_BENCH_{i}"] = json.dumps(conn)
        # The http provider's connection holds the account's key too (as its password, without a login: the
        # hook then adds no auth of its own; the key goes in the trigger's header): one secret per account in
        # either case, as it would be kept (never in trigger kwargs). Airflow masks every connection secret it
        # loads, and its masker recompiles one pattern of every secret per new one: at 1,000 accounts ~13 s of CPU
        # and ~44 KiB of RSS per secret, whichever provider loads them.
        env[f"AIRFLOW_CONN_HTTP_BENCH_{i}"] = json.dumps({"conn_type": "http", "host": url, "password": account_key(i)})
    return env


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    fmt = f"{{:,.{digits}f}}"
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def measure_offline(url: str) -> dict[str, str]:
    """Bytes per idle poll, detector throughput vs json.loads, state size, detection latency, import cost."""
    import httpx

    from airflow_provider_housecallpro.api.models import parse_raw_page
    from airflow_provider_housecallpro.events.detector import SCHEDULED, DetectorSettings
    from airflow_provider_housecallpro.events.poll import drive, poll_plan, read_window
    from airflow_provider_housecallpro.sandbox import SandboxAdmin

    admin = SandboxAdmin(url)
    admin.reset(seed=1)
    admin.bulk_jobs(10_000)
    headers = {"Authorization": f"Token {KEY}"}
    idle = httpx.get(f"{url}/{IDLE_QUERY}", headers=headers)
    out = {"idle poll bytes": f"{len(idle.content):,}"}

    # Detector: the upcoming-window read of 10,000 jobs with nothing changed vs bare json.loads of the pages.
    from datetime import UTC, datetime

    settings = DetectorSettings(kind=SCHEDULED, page_size=200)
    texts: dict[str, str] = {}

    def fetch(query: Any) -> Any:
        key = repr(query.to_params())
        if key not in texts:
            texts[key] = httpx.get(f"{url}/jobs", params=query.to_params(), headers=headers).text
        return parse_raw_page(json.loads(texts[key]), "jobs")

    first = drive(poll_plan(settings, None, datetime.now(UTC), since=datetime.now(UTC)), fetch)
    from airflow_provider_housecallpro.events.detector import Detector

    def window(read: Any) -> Any:
        detector = Detector(settings, first.state, datetime.now(UTC))
        plan = read_window(detector, settings)
        try:
            query = next(plan)
            while True:
                query = plan.send(read(query))
        except StopIteration:
            pass
        return detector.finish(reconciled=True)

    used: list[str] = []
    window(lambda q: (used.append(repr(q.to_params())), fetch(q))[1])  # the pages a window read asks for
    ratios = []
    for _ in range(5):
        t = time.perf_counter()
        for key in used:
            json.loads(texts[key])
        bare = time.perf_counter() - t
        t = time.perf_counter()
        result = window(fetch)  # json.loads of the same pages + envelope + detection
        ours = time.perf_counter() - t
        assert result.events == []
        ratios.append(100 * bare / ours)
    jobs = first.state.to_json()
    out["detector vs json.loads (nothing fires), %"] = spread(ratios, 0)
    out["state bytes per job (10,000 jobs)"] = f"{len(json.dumps(jobs)) / max(jobs['count'], 1):.1f}"

    # Import cost: a fresh interpreter importing our sensor module vs the http provider's sensor module.
    for label, module in (
        ("import ours (s)", "airflow_provider_housecallpro.sensors.jobs"),
        ("import http sensor (s)", "airflow.providers.http.sensors.http"),
    ):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        out[label] = spread(times, 2)
    return out


def detection_latency(url: str, interval: float, samples: int) -> list[float]:
    """Book a job at a random moment; how long until our trigger yields it (poll interval ``interval``)."""
    import random

    from airflow_provider_housecallpro.sandbox import SandboxAdmin
    from airflow_provider_housecallpro.triggers.jobs import JobScheduledTrigger

    admin = SandboxAdmin(url)
    customer = admin.all_jobs()[0]["customer"]["id"]
    os.environ.update(connections(url, 1))
    lat = []
    for _ in range(samples):

        async def once() -> float:
            state = await asyncio.to_thread(live_state, url)  # after the previous sample's booking

            async def next_event() -> Any:
                trigger = JobScheduledTrigger(housecallpro_conn_id="bench_0", state=state, poll_interval=interval)
                gen = trigger.run()
                try:
                    return (await gen.__anext__()).payload
                finally:
                    await gen.aclose()

            task = asyncio.ensure_future(next_event())
            await asyncio.sleep(random.uniform(1.2, interval + 1.0))
            day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
            booked = time.monotonic()
            job = await asyncio.to_thread(admin.book_job, customer_id=customer, scheduled_start=f"{day}T15:00:00Z")
            while True:
                payload = await task
                if job["id"] in [e["job"]["id"] for e in payload["events"]]:
                    return time.monotonic() - booked
                state = payload["state"]  # an earlier booking: carry on from there
                task = asyncio.ensure_future(next_event())

        lat.append(asyncio.run(once()))
    return lat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N up to 100 only")
    parser.add_argument("--sizes", help="comma-separated N to run (default 1,10,100,1000)")
    parser.add_argument("--kinds", default="ours,http", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("one", "many"), help="only the one-account or only the N-accounts rows")
    parser.add_argument("--scenario", action="store_true", help=argparse.SUPPRESS)
    for name, kind in (
        ("--kind", str),
        ("--n", int),
        ("--accounts", int),
        ("--interval", float),
        ("--rounds", int),
        ("--url", str),
    ):
        parser.add_argument(name, type=kind)
    args = parser.parse_args()
    if args.scenario:
        return run_scenario(args)

    from airflow_provider_housecallpro.sandbox import SandboxServer

    sizes = [1, 10, 100] if args.quick else [1, 10, 100, 1000]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    with SandboxServer(api_key=KEY, seed=1) as sandbox:
        url = sandbox.url
        rows: dict[tuple[str, int, str], dict[str, list[float]]] = {}
        plan = [(n, 1) for n in sizes if args.only != "many"]
        plan += [(n, n) for n in sizes if n > 1 and args.only != "one"]
        for n, accounts in plan:
            register_accounts(url, accounts)
            env = {**os.environ, **connections(url, accounts)}  # the connections, as a triggerer's environment
            interval = 2.0 if n <= 100 else 10.0
            for kind in args.kinds.split(","):
                for _ in range(args.repeat):
                    cmd = [
                        sys.executable,
                        __file__,
                        "--scenario",
                        "--kind",
                        kind,
                        "--n",
                        str(n),
                        "--accounts",
                        str(accounts),
                        "--interval",
                        str(interval),
                        "--rounds",
                        "3",
                        "--url",
                        url,
                    ]
                    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
                    if done.returncode != 0:
                        raise SystemExit(f"scenario {kind} N={n} failed:\n{done.stderr[-3000:]}")
                    if os.environ.get("HCP_BENCH_TRACEMALLOC") or os.environ.get("HCP_BENCH_OBJECTS"):
                        sys.stderr.write(done.stderr)  # the diagnosis the scenario printed
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    where = "one account" if accounts == 1 else "N accounts"
                    for key, value in result.items():
                        rows.setdefault((kind, n, where), {}).setdefault(key, []).append(value)
        # Start-up: 100 triggers at once (measured inside the N=100 scenarios above, first 1.5 intervals).
        offline = measure_offline(url) if args.only is None else {}
        latency = detection_latency(url, interval=2.0, samples=5 if not args.quick else 3) if args.only is None else []

    print(f"\nmachine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; ", end="")
    import airflow

    print(f"Airflow {airflow.__version__}; min / median / max over {args.repeat} runs\n")
    metrics = [
        ("requests_per_interval", "API requests per interval", 1),
        ("account_fewest", "requests per interval of the account with the fewest", 2),
        ("account_most", "requests per interval of the account with the most", 2),
        ("rss_per_trigger_kib", "RSS per trigger (KiB)", 0),
        ("stall_steady_ms", "worst loop stall, steady (ms)", 0),
        ("stall_start_ms", "worst loop stall, start-up (ms)", 0),
        ("cpu_per_idle_poll_ms", "CPU per idle poll (ms)", 2),
        ("startup_s", "start-up: until every account has polled (s)", 1),
        ("gc_steady_ms", "of which: worst garbage-collector pause, steady (ms)", 0),
        ("gc_start_ms", "of which: worst garbage-collector pause, start-up (ms)", 0),
    ]
    print("| N | where | metric | ours | http provider |")
    print("|---|---|---|---|---|")
    for (kind, n, where), _ in sorted(rows.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        if kind != "ours":
            continue
        for key, label, digits in metrics:
            if where == "N accounts":
                label = label.replace("per trigger", "per account (one trigger each)")
            elif key.startswith("account_") or key == "startup_s":
                continue
            ours = spread(rows[("ours", n, where)][key], digits)
            http = spread(rows.get(("http", n, where), {}).get(key, []), digits)
            print(f"| {n:,} | {where} | {label} | {ours} | {http} |")
    print()
    for label, value in offline.items():
        print(f"- {label}: {value}")
    if latency:
        print(f"- detection latency at poll interval 2 s (s): {spread(latency, 2)}")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    main()
