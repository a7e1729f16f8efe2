"""The ``housecallpro`` command. Subcommands import what they need lazily, so ``--help`` stays fast."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType


def _add_sandbox_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local Housecall Pro API (seeded data, admin API under /_sandbox)",
        description="Run the local Housecall Pro sandbox API in the foreground until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="port, 0 = any free port (default: %(default)s)")
    parser.add_argument("--api-key", default="sandbox-key", help="accepted API key (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the generated data (default: %(default)s)")
    parser.set_defaults(handler=_run_sandbox)


def _run_sandbox(args: argparse.Namespace) -> int:
    from airflow_provider_housecallpro.sandbox.server import SandboxServer

    server = SandboxServer(api_key=args.api_key, seed=args.seed, host=args.host, port=args.port)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        print(f"housecallpro sandbox: cannot start on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"Housecall Pro sandbox running at {server.url}", flush=True)
    print(f"API key: {args.api_key}  (header 'Authorization: Token {args.api_key}')", flush=True)
    print(f"Admin API: {server.url}/_sandbox  (seed {args.seed}); Ctrl+C to stop", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


def _add_find_records_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "find-records",
        help="print the most recent matching jobs exactly as a sensor would push them",
        description="The product's 'Test your trigger -> Find new records': fetch the most recent jobs that "
        "match the filter and print them as the JSON event payloads a Job scheduled / Job completed sensor "
        "returns, so downstream tasks can be mapped before going live. Reads only; changes nothing.",
    )
    parser.add_argument(
        "--conn-id", default="housecallpro_default", help="Airflow connection id (default: %(default)s)"
    )
    parser.add_argument("--event", choices=("scheduled", "completed"), required=True, help="which trigger")
    parser.add_argument("--filter", default=None, help='JobFilter as JSON, e.g. \'{"job_types": ["Plumbing Repair"]}\'')
    parser.add_argument("--limit", type=int, default=5, help="how many records (default: %(default)s)")
    parser.set_defaults(handler=_run_find_records)


def _run_find_records(args: argparse.Namespace) -> int:
    import json

    from airflow_provider_housecallpro.api.errors import HousecallProError
    from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED
    from airflow_provider_housecallpro.sensors.jobs import find_records

    try:
        filters = json.loads(args.filter) if args.filter else None
    except json.JSONDecodeError as exc:
        print(f"housecallpro find-records: --filter is not valid JSON: {exc}", file=sys.stderr)
        return 2
    kind = SCHEDULED if args.event == "scheduled" else COMPLETED
    stdout = sys.stdout
    # Keep stdout for the JSON alone: Airflow's logging may write its log lines to stdout.
    with contextlib.redirect_stdout(sys.stderr):
        _logs_to_stderr(stdout)
        try:
            events = find_records(kind, housecallpro_conn_id=args.conn_id, filters=filters, limit=args.limit)
        except HousecallProError as exc:
            print(f"housecallpro find-records: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(events, indent=2), file=stdout)
    return 0


def _add_test_connection_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "test-connection",
        help="what the UI's Test button does: one GET /company with the connection's API key",
        description="Test a Housecall Pro connection as the UI's Test button would (one GET /company, no "
        "retries, within 10 s), for any connection Airflow can read (metadata DB, AIRFLOW_CONN_* variable, "
        "secrets backend) and whatever AIRFLOW__CORE__TEST_CONNECTION says. Exit code 0 when it connects.",
    )
    parser.add_argument(
        "conn_id", nargs="?", default="housecallpro_default", help="connection id (default: %(default)s)"
    )
    parser.set_defaults(handler=_run_test_connection)


def _run_test_connection(args: argparse.Namespace) -> int:
    from airflow.exceptions import AirflowNotFoundException  # type: ignore[attr-defined]

    from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        _logs_to_stderr(stdout)
        try:
            ok, message = HousecallProHook(args.conn_id).test_connection()
        except AirflowNotFoundException as exc:
            ok, message = False, f"housecallpro test-connection: {exc}"
    print(message, file=stdout if ok else sys.stderr)
    return 0 if ok else 1


def _logs_to_stderr(stdout: object) -> None:
    """Point log handlers that hold the real stdout at stderr (others follow ``sys.stdout``)."""
    import logging

    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is stdout:
                with contextlib.suppress(AttributeError):
                    handler.setStream(sys.stderr)


def _add_watcher_state_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "watcher-state",
        help="show or reset an event trigger's (AssetWatcher's) stored state",
        description="Where a Housecall Pro event trigger keeps its state, and what: on Airflow >= 3.3 its asset's "
        "state store (--asset needed), on 3.0-3.2 the Variable housecallpro_watcher__NAME. Run it where the "
        "`airflow` command runs (it reads the metadata DB). Never prints a secret or a job's details.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_text in (
        ("show", "print what is stored (cursor, go-live, tracked jobs, pending events) and where"),
        ("reset", "delete it: the watcher goes live again (changes made before then are not delivered)"),
    ):
        sub = actions.add_parser(action, help=help_text, description=help_text)
        sub.add_argument("name", help="the trigger's `name` (e.g. JobCompletedEventTrigger(name=...))")
        sub.add_argument("--kind", choices=("scheduled", "completed"), required=True, help="which trigger")
        sub.add_argument("--asset", default=None, help="the watched asset's name (Airflow >= 3.3)")
        sub.set_defaults(handler=_run_watcher_state)


def _run_watcher_state(args: argparse.Namespace) -> int:
    import json

    from airflow_provider_housecallpro.triggers import state_admin
    from airflow_provider_housecallpro.triggers.events import ERROR_REPEAT_SECONDS
    from airflow_provider_housecallpro.triggers.watcher_state import KINDS

    kind = KINDS[args.kind]
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # stdout for the result alone (Airflow may log to stdout)
        _logs_to_stderr(stdout)
        try:
            if args.action == "show":
                print(json.dumps(state_admin.show(args.name, kind, args.asset), indent=2), file=stdout)
                return 0
            deleted = state_admin.reset(args.name, kind, args.asset)
        except state_admin.StateAdminError as exc:
            print(f"housecallpro watcher-state: {exc}", file=sys.stderr)
            return 1
    if not deleted:
        print(f"Nothing stored for the {args.kind} watcher {args.name!r}: it goes live at its next start.", file=stdout)
        return 0
    for where in deleted:
        print(f"Deleted {where}.", file=stdout)
    print(
        f"The {args.kind} watcher {args.name!r} goes live again at its next start (a stopped one within "
        f"{ERROR_REPEAT_SECONDS / 60:.0f} minutes); changes made before then are not delivered.",
        file=stdout,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="housecallpro", description="Housecall Pro provider tools.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_sandbox_parser(subparsers)
    _add_find_records_parser(subparsers)
    _add_test_connection_parser(subparsers)
    _add_watcher_state_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
