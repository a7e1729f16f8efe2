"""Where the receiver hands deliveries inside Airflow's API server (the plugin): straight into the metadata DB.

- A job change is appended to the connection's inbox Variable (:mod:`.inbox`), which the connection's job watchers
  read (``webhooks=True``) and judge against their own state: the asset event is made by the watcher, exactly as for
  a change it polled.
- Every delivery is also a raw asset event on ``housecallpro.webhooks.<event>``, when a DAG declared that asset
  (``extra["payload"]`` = :meth:`.Delivery.raw_payload`).

Both in one DB transaction, in a worker thread (never on the API server's event loop), one write at a time per
process. The webhook secret is the connection's ``webhook_secret`` extra, read through Airflow's secrets backends
and cached for ``SECRET_TTL`` seconds (a rotated secret takes effect within that).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from airflow_provider_housecallpro.webhooks import inbox
from airflow_provider_housecallpro.webhooks.deliveries import Delivery, raw_asset_name

log = logging.getLogger(__name__)

SECRET_EXTRA = "webhook_secret"
SECRET_TTL = 10.0


def secret_of(extras: Any) -> str | None:
    if not isinstance(extras, dict):
        return None
    value = extras.get(SECRET_EXTRA, extras.get(f"extra__housecallpro__{SECRET_EXTRA}"))
    return value if isinstance(value, str) and value else None


def _lookup_secret(conn_id: str) -> str | None:
    from airflow.exceptions import AirflowNotFoundException  # type: ignore[attr-defined]
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    return secret_of(conn.extra_dejson)


def _record(conn_id: str, delivery: Delivery) -> None:
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    entry = delivery.job_entry()
    with create_session() as session:
        if entry is not None:
            key = inbox.variable_key(conn_id)
            row = session.scalar(select(Variable).where(Variable.key == key).with_for_update())
            current = json.loads(row.val) if row is not None and row.val else None
            text = json.dumps(inbox.append(current, [entry], time.time()), separators=(",", ":"))
            if row is None:
                session.add(Variable(key=key, val=text, description=inbox.VARIABLE_DESCRIPTION))
            else:
                row.val = text
        asset = session.scalar(select(AssetModel).where(AssetModel.name == raw_asset_name(delivery.event)).limit(1))
        if asset is not None:
            asset_manager.register_asset_change(
                asset=asset,
                extra={"from_housecallpro_webhook": True, "payload": delivery.raw_payload()},
                session=session,
            )


class AirflowRecorder:
    def __init__(self) -> None:
        self._secrets: dict[str, tuple[float, str | None]] = {}
        self._lock: asyncio.Lock | None = None

    async def secret(self, conn_id: str) -> str | None:
        cached = self._secrets.get(conn_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        value = await asyncio.to_thread(_lookup_secret, conn_id)
        self._secrets[conn_id] = (time.monotonic() + SECRET_TTL, value)
        return value

    async def deliver(self, conn_id: str, delivery: Delivery) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await asyncio.to_thread(_record, conn_id, delivery)
