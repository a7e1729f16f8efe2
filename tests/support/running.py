"""Event triggers run as the triggerer runs them, for tests: ``run()`` iterated in a task, every event collected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from airflow_provider_housecallpro.triggers.events import JobEventsEventTrigger


class Running:
    """One trigger's ``run()`` iterated in a task, every event collected (what the triggerer would store)."""

    def __init__(self, trigger: JobEventsEventTrigger) -> None:
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._run(trigger))

    async def _run(self, trigger: JobEventsEventTrigger) -> None:
        async for event in trigger.run():
            self.events.append(event.payload)

    async def kill(self) -> None:
        """Stop it the way a SIGKILL does as far as the store is concerned: no write after this point."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def until(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll ``condition`` (the interval is not a synchronisation guess; ``limit`` only bounds a failing test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
