"""What the look-back costs a poll, at 0, 10 and 100 job changes per minute (loopback sandbox, frozen clock).

    .venv/bin/python benchmarks/bench_lookback.py [--polls 10] [--repeat 3]

Each scenario: a fresh sandbox world (seed 1 and 2,000 more booked jobs), its clock frozen and moved by
hand; one *Job scheduled* poller with a 60 s interval goes live, then for ``warm-up + polls`` minutes the world
makes ``rate`` changes spread over the minute (edits and reschedules of random jobs) and the poller polls once
at the end of it. Measured over the last ``polls`` polls: API requests and response bytes per poll (the
sandbox's request log) and the CPU time of one poll in the polling thread (client + detector; the sandbox
serves from another thread). ``lookback`` 0 is the second wave's reading (no read-back); 300 s is the default.
Printed as min / median / max over ``repeat`` runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hcp-bench-"))

from local_sandbox import local_sandbox  # benchmarks/ is the script's folder

from airflow_provider_housecallpro.events.detector import SCHEDULED, DetectorSettings
from airflow_provider_housecallpro.events.poll import poll_plan
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin

INTERVAL = 60
JOBS = 2_000  # booked jobs beside the seed's: 100 changes a minute over the look-back touch ~500 distinct jobs


def scenario(admin: SandboxAdmin, hook: HousecallProHook, rate: int, lookback: int, polls: int, seed: int) -> dict:
    admin.reset(seed=1)
    admin.clock(freeze=True)
    admin.bulk_jobs(JOBS)
    rng = random.Random(seed)
    settings = DetectorSettings(
        kind=SCHEDULED, lookback=timedelta(seconds=lookback), reconcile_interval=timedelta(days=365)
    )
    state = hook.poll_job_events(poll_plan(settings, None, datetime.now(UTC), since=datetime.now(UTC))).state
    ids = [j["id"] for j in admin.all_jobs() if j["work_status"] == "scheduled"]
    warm_up = (lookback + INTERVAL) // INTERVAL + 1
    requests, sizes, cpu = [], [], []
    for minute in range(warm_up + polls):
        for _ in range(rate):
            admin.clock(advance_seconds=INTERVAL / rate)
            job_id = rng.choice(ids)
            if rng.random() < 0.5:
                admin.edit(job_id, notes=f"note {rng.random():.6f}")
            else:
                start = datetime.now(UTC) + timedelta(days=rng.randint(2, 30), hours=rng.randint(0, 8))
                admin.reschedule(job_id, scheduled_start=start.strftime("%Y-%m-%dT%H:00:00Z"))
        if not rate:
            admin.clock(advance_seconds=INTERVAL)
        admin.clear_requests()
        t = time.thread_time()
        state = hook.poll_job_events(poll_plan(settings, state, datetime.now(UTC))).state
        spent = time.thread_time() - t
        if minute >= warm_up:
            log = admin.requests(path="/jobs")
            requests.append(len(log))
            sizes.append(sum(entry.get("bytes", 0) for entry in log))
            cpu.append(spent * 1000)
    return {
        "requests": statistics.mean(requests),
        "bytes": statistics.mean(sizes),
        "cpu_ms": statistics.mean(cpu),
    }


def spread(values: list[float], digits: int = 1) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low:,.{digits}f} / {mid:,.{digits}f} / {high:,.{digits}f}"


def main() -> None:
    # The bulk load's thousands of jobs sharing one updated_at are warned about on every read: not what is measured.
    logging.getLogger("airflow_provider_housecallpro").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with local_sandbox() as (admin, hook):
        print("| changes per minute | lookback (s) | requests per poll | bytes per poll | CPU per poll (ms) |")
        print("|---|---|---|---|---|")
        for rate in (0, 10, 100):
            for lookback in (0, 300):
                runs = [scenario(admin, hook, rate, lookback, args.polls, seed) for seed in range(args.repeat)]
                print(
                    f"| {rate} | {lookback} | {spread([r['requests'] for r in runs])} | "
                    f"{spread([r['bytes'] for r in runs], 0)} | {spread([r['cpu_ms'] for r in runs])} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
