"""SQLite settings for the end-to-end stack's metadata DB (imported by Airflow through its config).

Four Airflow processes share one SQLite file, in WAL mode (set after ``db migrate``), so readers never block the
writer. Writers wait for each other up to the busy timeout:

- Python's default 5 s was too short: a write waiting behind the scheduler's transaction on a loaded 2-core
  machine failed with "database is locked", which the API server answers as 500 "Database error" (about 1 run
  in 4).
- 120 s was too long. Once, on 3.3.2, the lock stayed taken for exactly that long: every component stopped
  (the triggerer: "Heartbeat recovered after 120.66 seconds"), tasks' calls to the API server timed out, and the
  scenarios after it failed. The holder was not found; a hold that ends just when the waiters give up looks like
  a holder waiting for one of them, and the shorter the timeout, the sooner such a hold ends. Task SDK calls
  time out after 5 s and retry 5 times with back-off, so a stall must end well within a minute.

30 s sits between the two. ``AirflowStack.idempotent`` retries the harness's own requests that meet the 500.
"""

CONNECT_ARGS = {"timeout": 30}
