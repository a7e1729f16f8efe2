"""SQLite settings for the end-to-end stack's metadata DB (imported by Airflow through its config).

Four Airflow processes share one SQLite file. With Python's default 5 s busy timeout, a write that waits
behind the scheduler's transaction on a loaded 2-core machine fails with "database is locked", which the API
server answers as 500 "Database error" (seen in about 1 run in 4). The stack waits up to two minutes for the
lock instead, and the file runs in WAL mode (set after ``db migrate``), so readers never block the writer.
One such 500 was still seen on a pause since; ``AirflowStack._set_paused`` retries that idempotent request and
reports the database's error.
"""

CONNECT_ARGS = {"timeout": 120}
