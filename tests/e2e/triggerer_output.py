"""What the triggerers printed, and the lines of it that say a trigger failed."""

from __future__ import annotations

from tests.e2e.airflow_stack import AirflowStack

# What a triggerer logs when a trigger raises, or its whole runner dies (Airflow 3.0.6 and 3.3.2), and what a
# watcher logs when it stops on an unusable state.
TRIGGER_FAILURES = (
    "exited with error",
    "Trigger failed",
    "Trigger runner process has died",
    "Response read out of order",
    "Traceback",
    "watcher-state reset",
)


def triggerer_output(stack: AirflowStack) -> dict[str, list[str]]:
    """Every triggerer's output (a watcher's own log lines go there too), by file."""
    return {
        str(path.relative_to(stack.home)): path.read_text(errors="replace").splitlines()
        for path in sorted(stack.output_dir.glob("triggerer*.log"))
    }


def _shutdown_traceback(lines: list[str], start: int) -> bool:
    """The traceback starting at ``lines[start]`` is Airflow 3.0.6's own SIGTERM shutdown, nothing of a trigger: its
    handler (``airflow/utils/cli.py`` ``sigint_handler``) raises ``SystemExit(0)`` wherever the process is, and when
    that is inside SQLAlchemy's pool closing a connection, the pool logs "Exception closing connection" with it."""
    block = [start]
    for index in range(start + 1, len(lines)):
        if not lines[index].startswith("  "):
            block.append(index)  # the exception line
            break
        block.append(index)
    text = [lines[i] for i in block]
    return (
        start > 0
        and "Exception closing connection" in lines[start - 1]
        and any("in sigint_handler" in line for line in text)
        and text[-1].strip() == "SystemExit: 0"
    )


def trigger_failures(output: dict[str, list[str]]) -> dict[str, list[str]]:
    """The lines that say a trigger failed (a traceback of Airflow's SIGTERM shutdown is none: a second triggerer
    stopped with SIGTERM on 3.0.6 can print one)."""
    found = {
        path: [
            line
            for index, line in enumerate(lines)
            if any(needle in line for needle in TRIGGER_FAILURES)
            and not (line.startswith("Traceback") and _shutdown_traceback(lines, index))
        ]
        for path, lines in output.items()
    }
    return {path: lines for path, lines in found.items() if lines}
