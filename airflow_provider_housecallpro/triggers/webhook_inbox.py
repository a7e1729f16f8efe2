"""The triggerer's side of webhooks: one reader per connection per triggerer process, started by the first job
watcher with ``webhooks=True`` and stopped with the last.

Every ``CHECK_SECONDS`` it reads the connection's inbox Variable (:mod:`airflow_provider_housecallpro.webhooks.inbox`,
written by the receiver) and pushes the entries it has not pushed yet to the connection's shared pollers
(:meth:`.shared_poller.SharedPoller.push`), where each watcher judges them against its own state. A process starting
afresh pushes what the inbox holds (at most ``KEEP_SECONDS``): a change already judged fires nothing again. Until the
receiver has written the inbox once (the connection's first delivery), it is read every ``ABSENT_SECONDS`` only: Airflow
logs an error for every read of a missing Variable, and the first delivery may then take that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from airflow_provider_housecallpro.triggers.shared_poller import active_pollers
from airflow_provider_housecallpro.triggers.state_store import _variable_get
from airflow_provider_housecallpro.webhooks import inbox

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
ABSENT_SECONDS = 30.0  # no inbox yet (no delivery ever): read it this often (a missing Variable logs an error)

_READERS: dict[tuple[int, str], InboxReader] = {}


class InboxReader:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.loop = asyncio.get_running_loop()
        self.users = 0
        self.last = 0
        self.reads = 0
        self._task = self.loop.create_task(self._run(), name=f"housecallpro-webhook-inbox-{conn_id}")

    async def _run(self) -> None:
        key = inbox.variable_key(self.conn_id)
        failing = False
        while True:
            try:
                value = await _variable_get(key)
            except Exception as exc:  # the polls carry on; only the fast path waits
                if not failing:
                    log.warning("Housecall Pro: webhook inbox %r unreadable (%s)", key, type(exc).__name__)
                failing = True
            else:
                failing = False
                self.reads += 1
                entries, self.last = inbox.after(value, self.last)
                if entries:
                    self._push(entries)
                if value is None:  # until the first delivery: Airflow logs every read of a missing Variable
                    await asyncio.sleep(ABSENT_SECONDS)
                    continue
            await asyncio.sleep(CHECK_SECONDS)

    def _push(self, entries: list[dict[str, Any]]) -> None:
        pushed = 0
        for poller in active_pollers():
            if poller.loop is self.loop and poller.key[1][0] == self.conn_id:
                poller.push(entries)
                pushed += 1
        log.info(
            "Housecall Pro: %d webhook job change(s) for %r handed to %d poller(s)", len(entries), self.conn_id, pushed
        )

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


def join(conn_id: str) -> InboxReader:
    """The running reader for ``conn_id`` in this event loop (started on first use)."""
    key = (id(asyncio.get_running_loop()), conn_id)
    reader = _READERS.get(key)
    if reader is None or reader._task.done():
        reader = _READERS[key] = InboxReader(conn_id)
    reader.users += 1
    return reader


async def leave(reader: InboxReader) -> None:
    reader.users -= 1
    if reader.users > 0:
        return
    key = (id(reader.loop), reader.conn_id)
    if _READERS.get(key) is reader:
        del _READERS[key]
    await reader.stop()
