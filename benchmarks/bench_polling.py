"""Benchmarks of the polling path against the local sandbox (loopback HTTP). Not part of the test suite.

    .venv/bin/python benchmarks/bench_polling.py [--jobs 10000] [--repeat 20]

Prints: idle poll cost (requests, latency), detection of a burst of new bookings (time, requests, events,
state size) and raw paging throughput of the sync and async hook paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hcp-bench-"))

from local_sandbox import local_sandbox  # benchmarks/ is the script's folder

from airflow_provider_housecallpro.events.detector import SCHEDULED, DetectorSettings
from airflow_provider_housecallpro.events.poll import poll_plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with local_sandbox() as (admin, hook):
        settings = DetectorSettings(kind=SCHEDULED, page_size=200, max_tracked=20_000)

        state = hook.poll_job_events(poll_plan(settings, None, datetime.now(UTC), since=datetime.now(UTC))).state
        idle = []
        admin.clear_requests()
        for _ in range(args.repeat):
            t = time.perf_counter()
            state = hook.poll_job_events(poll_plan(settings, state, datetime.now(UTC))).state
            idle.append(time.perf_counter() - t)
        idle_requests = len(admin.requests()) / args.repeat
        print(
            f"idle poll: {idle_requests:.1f} request(s), median {statistics.median(idle) * 1000:.1f} ms "
            f"(p90 {sorted(idle)[int(len(idle) * 0.9) - 1] * 1000:.1f} ms) over {args.repeat} polls"
        )

        admin.bulk_jobs(args.jobs)
        admin.clear_requests()
        t = time.perf_counter()
        result = hook.poll_job_events(poll_plan(settings, state, datetime.now(UTC)))
        burst = time.perf_counter() - t
        size = len(json.dumps(result.state.to_json()))
        print(
            f"burst of {args.jobs} bookings: {len(result.events)} events in {burst:.2f} s, "
            f"{len(admin.requests())} requests, state {len(result.state.records)} jobs / {size / 1024:.0f} KiB"
        )

        t = time.perf_counter()
        n = sum(1 for _ in hook.iter_jobs(page_size=200))
        sync_s = time.perf_counter() - t

        async def read_all() -> int:
            return len([j async for j in hook.aiter_jobs(page_size=200)])

        t = time.perf_counter()
        m = asyncio.run(read_all())
        async_s = time.perf_counter() - t
        print(f"paging {n} jobs (200/page): sync {n / sync_s:,.0f} jobs/s, async {m / async_s:,.0f} jobs/s")


if __name__ == "__main__":
    main()
