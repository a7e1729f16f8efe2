"""Where an event trigger keeps its detector state between triggerer restarts, pauses and re-parses.

A watcher's kwargs are fixed when the DAG is parsed, so the state cannot travel in them (as a deferral
trigger's does). Airflow 3.3 gives watchers a per-asset store (``asset_state_store``, injected by the
triggerer); Airflow 3.0-3.2 give triggers nothing durable but Variables. So:

- Airflow >= 3.3: the asset's state store, key ``housecallpro.detector``. On a miss it reads the Variable once,
  so a deployment upgraded from 3.0-3.2 carries its state over instead of going live again.
- Airflow 3.0-3.2: the Variable ``housecallpro_watcher__<name>`` (JSON), read and written through the
  triggerer's supervisor (in a worker thread, never on the event loop; see :mod:`..supervisor`).

Both hold the same JSON (:meth:`DetectorState.to_json`): about 16 bytes per tracked job.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from airflow_provider_housecallpro.supervisor import in_thread, round_trip

ASSET_STORE_KEY = "housecallpro.detector"
VARIABLE_PREFIX = "housecallpro_watcher__"


class StateStore(Protocol):
    where: str

    async def load(self) -> Any | None: ...

    async def save(self, value: dict[str, Any]) -> None: ...


def variable_key(name: str) -> str:
    return f"{VARIABLE_PREFIX}{name}"


async def _variable_get(key: str) -> Any | None:
    from airflow.providers.common.compat.sdk import Variable

    raw = await in_thread(Variable.get, key, default=None)
    if raw in (None, ""):
        return None
    return json.loads(raw) if isinstance(raw, str) else raw


async def _variable_set(key: str, value: dict[str, Any]) -> None:
    from airflow.providers.common.compat.sdk import Variable

    text = json.dumps(value, separators=(",", ":"))
    await in_thread(Variable.set, key, text, description="Housecall Pro event trigger state (do not edit)")


class VariableStore:
    """Airflow 3.0-3.2: one Variable per watcher."""

    def __init__(self, name: str) -> None:
        self.key = variable_key(name)
        self.where = f"Variable {self.key!r}"

    async def load(self) -> Any | None:
        return await _variable_get(self.key)

    async def save(self, value: dict[str, Any]) -> None:
        await _variable_set(self.key, value)


class AssetStore:
    """Airflow >= 3.3: the watched asset's state store (the accessor the triggerer injects)."""

    def __init__(self, accessor: Any, name: str) -> None:
        self.accessor = accessor
        self.fallback = VariableStore(name)
        self.where = f"asset state store key {ASSET_STORE_KEY!r}"

    async def load(self) -> Any | None:
        try:
            value = await round_trip(self.accessor.aget(ASSET_STORE_KEY))
        except ValueError as exc:  # one trigger row behind several assets (identical kwargs)
            raise ValueError(
                f"{exc} -- several assets share this watcher's trigger: give each asset's trigger its own `name`"
            ) from None
        if value is None:  # upgraded from Airflow 3.0-3.2: the Variable holds the state
            try:
                value = await self.fallback.load()
            except ImportError:  # not inside an Airflow component (no supervisor to ask): no Variables either
                value = None
        return value

    async def save(self, value: dict[str, Any]) -> None:
        await round_trip(self.accessor.aset(ASSET_STORE_KEY, value))


def state_store(trigger: Any, name: str) -> StateStore:
    """The store for ``trigger``: the asset state store when the triggerer gave it one, else a Variable."""
    accessor = getattr(trigger, "asset_state_store", None)
    if accessor is not None:
        return AssetStore(accessor, name)
    return VariableStore(name)
