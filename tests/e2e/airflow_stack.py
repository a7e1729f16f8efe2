"""A real Airflow for end-to-end tests: API server, scheduler, DAG processor and triggerer as subprocesses.

Everything is private and on loopback: a throw-away ``AIRFLOW_HOME`` (SQLite metadata DB, config, logs), the
API server on a free 127.0.0.1 port (and no log servers: they would listen on every interface), the
LocalExecutor, the simple auth manager with every request treated as admin (so the REST API needs no login),
and only the DAG bundles the test names. Connections are passed as ``AIRFLOW_CONN_*`` environment variables.
Nothing of the calling process's Airflow configuration leaks in: every ``AIRFLOW*`` variable is dropped from
the inherited environment first.

Readiness and progress are observed by polling (the health endpoint, the REST API) against deadlines, never
by sleeping a guessed amount. When something fails or times out, the assertion message carries the tail of
every component's output. ``stop()`` always terminates each component's whole process group (executor workers,
task and trigger processes, API workers included), and then any straggler left in the components' sessions.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import httpx

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Each component's command line. The scheduler's and triggerer's log servers would listen on every interface
# (Airflow hard-codes it), so they are skipped: the API server reads the task and trigger logs from the shared
# log folder instead, and nothing listens beyond loopback.
COMMANDS: dict[str, Callable[[int], list[str]]] = {
    "api-server": lambda port: ["api-server", "--host", "127.0.0.1", "--port", str(port)],
    "scheduler": lambda port: ["scheduler", "--skip-serve-logs"],
    "dag-processor": lambda port: ["dag-processor"],
    "triggerer": lambda port: ["triggerer", "--skip-serve-logs"],
}
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
REPO = Path(__file__).resolve().parents[2]
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
FINISHED_RUN_STATES = frozenset({"success", "failed"})
T = TypeVar("T")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the test process dies (Linux), so no component outlives a
    killed test run. Best effort: elsewhere, stop() is the only cleanup."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<unreadable: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


class AirflowStack:
    """``with AirflowStack(home, {"bundle": dags_dir}, env={...}) as af: af.trigger(...)``.

    :param home: an empty directory, used as ``AIRFLOW_HOME``.
    :param bundles: DAG bundle name -> folder; each becomes a local DAG bundle.
    :param env: extra environment for every component (connections, variables, config overrides).
    :param python: the interpreter whose ``airflow`` is run (default: this one, i.e. the same venv).
    :param components: which components to start (default all four; the API server always).
    """

    def __init__(
        self,
        home: Path,
        bundles: Mapping[str, Path],
        *,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        startup_timeout: float = 240.0,
        components: tuple[str, ...] = COMPONENTS,
    ) -> None:
        unknown = set(components) - set(COMPONENTS)
        if unknown or "api-server" not in components:
            raise ValueError(f"components must include 'api-server' and be among {COMPONENTS}; got {components}")
        self.components = components
        self.home = home.resolve()
        self.bundles = {name: Path(path).resolve() for name, path in bundles.items()}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.output_dir = self.home / "component-output"
        self.log_dir = self.home / "logs"
        airflow = Path(python).parent / "airflow"
        self.airflow = [str(airflow)] if airflow.exists() else [python, "-m", "airflow"]
        self.env = self._environment(python, env or {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: list[str] = []
        self.db_errors: list[str] = []  # metadata-DB errors a retried idempotent request met (see idempotent)
        self.log_files: dict[str, Path] = {}
        # Longer than the SQLite busy timeout (30 s): a request waiting for the lock is slow, not lost.
        self._client = httpx.Client(base_url=self.url, timeout=150.0)

    # -- configuration ------------------------------------------------------------------------------
    def _environment(self, python: str, extra: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env["PATH"] = os.pathsep.join([str(Path(python).parent), env.get("PATH", "")])
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                # Wait for SQLite's lock instead of failing after 5 s (see sqlite_settings.py).
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tests.e2e.sqlite_settings.CONNECT_ARGS",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "tests.e2e.sqlite_settings.CONNECT_ARGS",
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
                "AIRFLOW__CORE__DAGS_FOLDER": str(next(iter(self.bundles.values()))),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                    [
                        {"name": name, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(path)}}
                        for name, path in self.bundles.items()
                    ]
                ),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # A 500 "Database error" names the statement and the database's own error, not only a lookup id
                # into the API server's log (which a failure report may cut).
                "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
                # Nothing runs until the test unpauses it (after arranging the world for it).
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                # LocalExecutor is Airflow 3's default and works with SQLite; a few parallel slots suffice.
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # Shared secrets, so tokens minted by one component are accepted by the others.
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                # Loopback only, on free ports (other Airflows on this machine keep their defaults; the log
                # servers are not started, see COMMANDS, but get free ports should anything start one).
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_dir),
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            }
        )
        env.update(extra)
        return env

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(exist_ok=True)
        deadline = time.monotonic() + self.startup_timeout
        migrate = self._run_cli("db", "migrate", timeout=self.startup_timeout)
        if migrate.returncode != 0:
            self.fail(f"`airflow db migrate` failed ({migrate.returncode}):\n{migrate.stdout}")
        with sqlite3.connect(self.home / "airflow.db") as db:  # readers never block the writer
            db.execute("PRAGMA journal_mode=WAL")
        for name in self.components:
            self._spawn(name, COMMANDS[name](self.port))
        self.wait_for("all components healthy", self._healthy, timeout=max(deadline - time.monotonic(), 30.0))

    def _run_cli(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.airflow, *args],
            env=self.env,
            cwd=self.home,
            capture_output=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )

    def _spawn(self, name: str, args: list[str], log_name: str | None = None) -> None:
        path = self.output_dir / f"{log_name or name}.log"
        n = 1
        while path.exists():  # never another component's (or an earlier life's) output
            path, n = self.output_dir / f"{log_name or name}.{n}.log", n + 1
        self.log_files[name] = path
        out = path.open("wb")
        try:
            self.procs[name] = subprocess.Popen(
                [*self.airflow, *args],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends it with all its children
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            out.close()  # the child has its own copy of the descriptor

    def stop(self, grace: float = 20.0) -> None:
        """Terminate every component's process group (TERM, then KILL after ``grace``), then any straggler."""
        for proc in self.procs.values():
            self._signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for proc in self.procs.values():
            self._signal_group(proc, signal.SIGKILL)  # the group may outlive its leader
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for pid in self.stragglers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._client.close()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # start_new_session: the group id is the leader's pid

    def stragglers(self) -> list[int]:
        """Pids of live processes in the sessions of this stack's components (children included).

        Each component leads its own session (``start_new_session``), and its children inherit the session
        id even after the leader has exited. (Their environment cannot tell: Airflow's setproctitle
        overwrites it.)
        """
        sessions = {proc.pid for proc in self.procs.values()}
        found = []
        proc_root = Path("/proc")
        if not sessions or not proc_root.is_dir():
            return []
        for entry in proc_root.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid pgrp session ..." -- comm may contain spaces and parentheses
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[3]) in sessions:
                found.append(int(entry.name))
        return found

    # -- observing ----------------------------------------------------------------------------------
    def diagnostics(self, lines: int = 60) -> str:
        parts = [f"----- retried metadata-DB errors -----\n{e}" for e in self.db_errors]
        for name, proc in self.procs.items():
            rc = proc.poll()
            status = "running" if rc is None else f"exited with {rc}"
            parts.append(f"----- {name} ({status}), last {lines} lines -----\n{_tail(self.log_files[name], lines)}")
        task_logs = (
            sorted(str(p.relative_to(self.log_dir)) for p in self.log_dir.rglob("*.log"))
            if self.log_dir.exists()
            else []
        )
        parts.append("----- task log files -----\n" + ("\n".join(task_logs) or "<none>"))
        return "\n".join(parts)

    def fail(self, message: str) -> NoReturn:
        raise AssertionError(f"{message}\n\n{self.diagnostics()}")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                self.fail(f"Airflow component {name!r} exited with {proc.returncode}")

    def dag_report(self, dag_id: str) -> str:
        """Every run of ``dag_id`` with its task instances' states and tries, and the last task log lines."""
        lines = []
        for run in self.dag_runs(dag_id):
            lines.append(f"run {run['dag_run_id']}: {run['state']} (run_after {run.get('run_after')})")
            for ti in self.task_instances(dag_id, run["dag_run_id"]):
                lines.append(f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']} try {ti['try_number']}")
                if ti["state"] not in (None, "success", "skipped", "scheduled", "queued"):
                    with contextlib.suppress(Exception):
                        log = self.task_log(dag_id, run["dag_run_id"], ti["task_id"], ti["try_number"], ti["map_index"])
                        lines.extend("    | " + line for line in log.splitlines()[-25:])
        return "\n".join(lines)

    def wait_for(
        self,
        what: str,
        condition: Callable[[], T | None],
        timeout: float,
        interval: float = 0.2,
        dump: str | None = None,
    ) -> T:
        """Poll ``condition`` until it returns something truthy; fail (with logs, and the runs of DAG ``dump``) on
        timeout or a dead component."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                report = f"\n----- runs of {dump} -----\n{self.dag_report(dump)}" if dump else ""
                self.fail(f"Timed out after {timeout:.0f} s waiting for {what}{report}")
            time.sleep(interval)  # the polling interval, not a synchronisation guess

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._client.request(method, path, **kwargs)

    def api_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.api(method, path, **kwargs)
        if not response.is_success:
            self.fail(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    def _healthy(self) -> dict[str, Any] | None:
        try:
            response = self.api("GET", "/api/v2/monitor/health")
        except httpx.TransportError:
            return None  # not listening yet
        if response.status_code != 200:
            return None
        health: dict[str, Any] = response.json()
        # The metadata DB and every component started (the health report names them with underscores).
        wanted = {"metadatabase", *(name.replace("-", "_") for name in self.components if name != "api-server")}
        statuses = [v.get("status") for k, v in health.items() if isinstance(v, dict) and k in wanted]
        return health if len(statuses) == len(wanted) and all(s == "healthy" for s in statuses) else None

    def import_errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.api_json("GET", "/api/v2/importErrors")["import_errors"]
        return errors

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the DAG processor has parsed and serialized ``dag_id``; fail fast on import errors."""

        def parsed() -> dict[str, Any] | None:
            errors = self.import_errors()
            if errors:
                self.fail(f"DAG import errors while waiting for {dag_id!r}: {json.dumps(errors, indent=2)}")
            response = self.api("GET", f"/api/v2/dags/{dag_id}")
            if response.status_code != 200:
                return None
            details = self.api("GET", f"/api/v2/dags/{dag_id}/details")
            body: dict[str, Any] = response.json()
            return body if details.status_code == 200 else None

        return self.wait_for(f"DAG {dag_id!r} to be parsed", parsed, timeout=timeout)

    def unpause(self, dag_id: str) -> None:
        self._set_paused(dag_id, False)

    def pause(self, dag_id: str) -> None:
        self._set_paused(dag_id, True)

    def _set_paused(self, dag_id: str, paused: bool) -> None:
        """PATCH the DAG's ``is_paused``, as the UI's toggle does (see :meth:`idempotent`)."""
        self.idempotent("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def idempotent(self, method: str, path: str, ok: tuple[int, ...] = (), attempts: int = 3, **kwargs: Any) -> None:
        """Send an idempotent request (a pause, ending or deleting a run) and retry a 500 "Database error" up to
        ``attempts`` times. That 500 is this stack's SQLite metadata DB (four Airflow processes, one file): seen in
        CI failing the API server's own audit-log INSERT, a request in which nothing of ours runs. A success or a
        status in ``ok`` returns; any other answer fails at once. Each retried error is kept in ``db_errors``,
        shown by ``diagnostics()`` and raised as a warning, so a recurring one is not lost."""
        for attempt in range(1, attempts + 1):
            response = self.api(method, path, **kwargs)
            if response.is_success or response.status_code in ok:
                return
            if response.status_code != 500 or "Database error" not in response.text or attempt == attempts:
                self.fail(f"{method} {path} answered {response.status_code}: {response.text}")
            detail = response.json().get("detail")
            cause = detail.get("orig_error") if isinstance(detail, dict) else None
            error = f"{method} {path} (attempt {attempt}): {cause or response.text}"
            self.db_errors.append(error)
            warnings.warn(f"retried after the metadata DB refused it: {error}", stacklevel=2)

    # -- chaos --------------------------------------------------------------------------------------
    def add(self, name: str, like: str) -> None:
        """Start another component ``name`` running ``like``'s command (e.g. a second triggerer)."""
        self._spawn(name, COMMANDS[like](self.port))

    def kill(self, name: str) -> None:
        """SIGKILL component ``name`` and every process of its group: no clean-up runs."""
        proc = self.procs.pop(name)
        self._signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=30)
        self.killed.append(name)

    def retire(self, name: str, grace: float = 20.0) -> None:
        """Stop component ``name`` cleanly (TERM, then KILL after ``grace``): a second triggerer no longer needed."""
        proc = self.procs.pop(name)
        self._signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        self._signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=30)

    def restart(self, name: str, like: str) -> None:
        """Start component ``name`` again after :meth:`kill` (its output goes to ``<name>.restart-<n>.log``)."""
        self._spawn(f"{name}", COMMANDS[like](self.port), log_name=f"{name}.restart-{self.killed.count(name)}")

    def dag_ids(self) -> list[str]:
        dags: list[dict[str, Any]] = self.api_json("GET", "/api/v2/dags", params={"limit": 100})["dags"]
        return [d["dag_id"] for d in dags]

    def metadata(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the metadata DB (SQLite, WAL: readers never block Airflow's writer)."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=60)
        ) as db:
            return db.execute(sql, args).fetchall()

    def quiesce(self, timeout: float = 180.0) -> None:
        """Nothing runs any more: every DAG paused (Airflow deletes their asset watchers), every DAG run deleted (with
        its task instances and XComs, so an @continuous DAG's sensor starts afresh next time), and no trigger left
        in the metadata DB (the triggerers cancel what they ran). What the next scenario on this stack starts from."""
        for dag_id in self.dag_ids():
            self.pause(dag_id)
            for run in self.dag_runs(dag_id):
                path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
                if run["state"] not in FINISHED_RUN_STATES:  # a running run cannot be deleted (409): end it first
                    self.idempotent("PATCH", path, json={"state": "failed"})
                self.idempotent("DELETE", path, ok=(404,))  # 404: a retry after the DB applied the first try
        self.wait_for("every trigger to go", lambda: not self.metadata("SELECT id FROM trigger"), timeout)

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        # 100: the API's largest page (every scenario makes fewer runs than that)
        runs: list[dict[str, Any]] = self.api_json("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})[
            "dag_runs"
        ]
        return runs

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})}
        run: dict[str, Any] = self.api_json("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        return run

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.api_json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        tis: list[dict[str, Any]] = self.api_json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")[
            "task_instances"
        ]
        return tis

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            # Airflow 3.0's API server commits a triggered run after it has answered the POST, so a GET right
            # after it can still answer 404: that is "not there yet", not a failure.
            response = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if response.status_code == 404:
                return None
            if not response.is_success:
                self.fail(f"GET dagRuns/{run_id} answered {response.status_code}: {response.text}")
            run: dict[str, Any] = response.json()
            return run if run["state"] in FINISHED_RUN_STATES else None

        return self.wait_for(f"run {run_id!r} of {dag_id!r} to finish", finished, timeout=timeout)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        entry = self.api_json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index},
        )
        return entry["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """A task try's log as the UI shows it (worker and triggerer parts), one line per record."""
        data = self.api_json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        content = data["content"]
        if isinstance(content, str):
            return content
        return "\n".join(
            json.dumps(item, ensure_ascii=False) if isinstance(item, dict) else str(item) for item in content
        )

    def lines_containing(self, needle: str) -> dict[str, list[str]]:
        """Every line of every file under AIRFLOW_HOME (task and component logs, component output, the metadata
        DB, config, ...) that contains ``needle``, by path relative to AIRFLOW_HOME."""
        raw = needle.encode()
        found: dict[str, list[str]] = {}
        for path in sorted(self.home.rglob("*")):
            if path.is_file() and raw in (data := path.read_bytes()):
                lines = [line.decode(errors="replace") for line in data.splitlines() if raw in line]
                found[str(path.relative_to(self.home))] = lines
        return found

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
