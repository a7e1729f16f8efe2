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


def trigger_failures(output: dict[str, list[str]]) -> dict[str, list[str]]:
    """The lines that say a trigger failed."""
    found = {
        path: [line for line in lines if any(needle in line for needle in TRIGGER_FAILURES)]
        for path, lines in output.items()
    }
    return {path: lines for path, lines in found.items() if lines}
