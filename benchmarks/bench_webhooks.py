"""Webhooks against polling, on this machine (loopback HTTP, the local sandbox). Not part of the test suite.

    .venv/bin/python benchmarks/bench_webhooks.py [--samples 20] [--poll-interval 5] [--deliveries 3000]

1. **Latency** from a sandbox change (a booking) to the event a job watcher yields, p50/p95:
   - webhook: sandbox → signed delivery → the real receiver app (uvicorn) → the connection's inbox (as the API-server
     plugin writes it; here the fake supervisor's Variables) → the triggerer's inbox reader (every ``CHECK_SECONDS``)
     → the watcher's detector;
   - polling: the same watcher without webhooks, at ``--poll-interval`` seconds (its latency is uniform over the
     interval: the line below scales it to the 60 s default and to the 900 s safety-net interval).
2. **Receiver throughput**: signed ``job.scheduled`` deliveries per second through the receiver app (signature check,
   JSON parse, hand-off to an in-memory recorder) in its own process, 32 concurrent senders; its peak RSS.
   The API-server plugin's recorder then writes the metadata DB once per delivery: the DB, not the receiver, bounds it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hcp-bench-"))
sys.path[:0] = [str(HERE), str(REPO)]

KEY = "bench-key"
CONN = "housecallpro_bench"
SECRET = "bench-webhook-secret"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- 1. latency -----------------------------------------------------------------------------------
async def latency(url: str, webhooks: bool, interval: float, samples: int) -> list[float]:
    import pytest

    from airflow_provider_housecallpro.sandbox import SandboxAdmin
    from airflow_provider_housecallpro.triggers.events import JobScheduledEventTrigger
    from tests.support.fake_supervisor import DictAssetStore, channel
    from tests.support.webhooks import InboxRecorder, serve

    admin = SandboxAdmin(url)
    customer = (await asyncio.to_thread(admin.all_jobs))[0]["customer"]["id"]
    patch = pytest.MonkeyPatch()
    _, supervisor = await channel(patch)
    os.environ[f"AIRFLOW_CONN_{CONN.upper()}"] = json.dumps({"conn_type": "housecallpro", "host": url, "password": KEY})
    trigger = JobScheduledEventTrigger(
        name=f"bench_{webhooks}", housecallpro_conn_id=CONN, webhooks=webhooks, poll_interval=interval
    )
    trigger.asset_state_store = DictAssetStore()  # type: ignore[attr-defined]
    arrived: dict[str, float] = {}
    signal = asyncio.Event()

    async def watch() -> None:
        async for event in trigger.run():
            arrived[event.payload["job"]["id"]] = time.perf_counter()
            signal.set()

    from airflow_provider_housecallpro.webhooks import inbox
    from airflow_provider_housecallpro.webhooks.receiver import create_receiver_app

    # Steady state: the connection has had deliveries before (a missing inbox is read every ABSENT_SECONDS only).
    supervisor.variables[inbox.variable_key(CONN)] = json.dumps(inbox.empty())
    recorder = InboxRecorder(supervisor, CONN)
    recorder_secret = SECRET

    async def secret(conn_id: str) -> str | None:
        return recorder_secret if conn_id == CONN else None

    recorder.secret = secret  # type: ignore[method-assign]
    out: list[float] = []
    with serve(create_receiver_app(recorder)) as receiver:
        if webhooks:
            await asyncio.to_thread(admin.set_webhooks, f"{receiver}/{CONN}", SECRET)
        task = asyncio.create_task(watch())
        from airflow_provider_housecallpro.triggers.shared_poller import active_pollers
        from tests.support.running import until

        await until(lambda: any(s.state is not None for p in active_pollers() for s in p.subscribers), "go-live")
        from airflow_provider_housecallpro.triggers.webhook_inbox import CHECK_SECONDS

        period = CHECK_SECONDS if webhooks else interval
        rng = random.Random(7)
        for day in range(samples):
            # A change lands at a random moment of the reader's / poller's cycle (booked right after the previous
            # event, every sample would land just after a read and wait a whole cycle).
            await asyncio.sleep(rng.uniform(0, period))
            start = time.perf_counter()
            job = await asyncio.to_thread(admin.book_job, customer_id=customer, **slot(day + 1))
            while job["id"] not in arrived:
                signal.clear()
                await signal.wait()
            out.append(arrived[job["id"]] - start)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if webhooks:
            await asyncio.to_thread(admin.disable_webhooks)
    patch.undo()
    return out


def slot(days: int) -> dict[str, str]:
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + days * 86400))
    return {"scheduled_start": f"{day}T15:00:00Z", "scheduled_end": f"{day}T17:00:00Z"}


def latency_table(samples: int, interval: float) -> None:
    from airflow_provider_housecallpro.sandbox import SandboxServer
    from airflow_provider_housecallpro.triggers.webhook_inbox import CHECK_SECONDS

    print(f"latency, sandbox change -> watcher event ({samples} bookings each)")
    for webhooks in (True, False):
        with SandboxServer(api_key=KEY) as sandbox:
            values = asyncio.run(latency(sandbox.url, webhooks, 3600.0 if webhooks else interval, samples))
        p50, p95 = statistics.median(values), pct(values, 0.95)
        if webhooks:
            print(f"  {f'webhook (inbox read every {CHECK_SECONDS:g} s):':36} p50 {p50:7.2f} s   p95 {p95:7.2f} s")
        else:
            print(f"  {f'polling every {interval:g} s:':36} p50 {p50:7.2f} s   p95 {p95:7.2f} s")
            cost = max(0.0, p50 - interval / 2)
            for scaled in (60.0, 900.0):
                print(
                    f"  {f'polling every {scaled:g} s (scaled):':36} p50 {scaled / 2 + cost:7.1f} s   "
                    f"p95 {scaled * 0.95 + cost:7.1f} s"
                )


# -- 2. receiver throughput -----------------------------------------------------------------------
def serve_receiver(port: int) -> None:
    import uvicorn

    from airflow_provider_housecallpro.webhooks.receiver import create_receiver_app

    class Counting:
        count = 0

        async def secret(self, conn_id: str) -> str | None:
            return SECRET

        async def deliver(self, conn_id: str, delivery: Any) -> None:
            self.count += 1

    uvicorn.run(create_receiver_app(Counting()), host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def blast(url: str, deliveries: int, concurrency: int) -> float:
    import httpx

    from airflow_provider_housecallpro.webhooks.signature import sign

    job = {"id": "job_1", "work_status": "scheduled", "customer": {"first_name": "Ada"}, "notes": "x" * 2000}
    body = json.dumps({"event": "job.scheduled", "company_id": "c", "job": job}).encode()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(deliveries):
        queue.put_nowait(i)
    failures = 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while not queue.empty():
            queue.get_nowait()
            stamp = str(int(time.time()))
            headers = {"api-timestamp": stamp, "api-signature": sign(SECRET, stamp, body)}
            response = await client.post(url, content=body, headers=headers)
            failures += response.status_code != 200

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        start = time.perf_counter()
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    assert failures == 0, f"{failures} deliveries refused"
    return deliveries / elapsed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(deliveries: int) -> None:
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        cpu0 = cpu_seconds(proc.pid)
        rate = asyncio.run(blast(f"http://127.0.0.1:{port}/{CONN}", deliveries, 32))
        per = (cpu_seconds(proc.pid) - cpu0) / deliveries
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        print(
            f"receiver: {rate:,.0f} signed deliveries/s ({deliveries} x ~2.3 KB, 32 concurrent), "
            f"peak RSS {int(peak) / 1024:.0f} MiB; receiver CPU {per * 1000:.2f} ms per delivery "
            f"(= {1 / per:,.0f} deliveries/s per free core; "
            f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_receiver(args.serve)
        return
    print(f"cores: {os.cpu_count()}")
    latency_table(args.samples, args.poll_interval)
    throughput(args.deliveries)


if __name__ == "__main__":
    main()
