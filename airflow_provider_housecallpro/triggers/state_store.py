"""Where an event trigger keeps its state (:mod:`.watcher_state`) between triggerer restarts, pauses and re-parses.

A watcher's kwargs are fixed when the DAG is parsed, so the state cannot travel in them (as a deferral
trigger's does). Airflow 3.3 gives watchers a per-asset store (``asset_state_store``, injected by the
triggerer); Airflow 3.0-3.2 give triggers nothing durable but Variables. So:

- Airflow >= 3.3: the asset's state store, key ``housecallpro.detector.<scheduled|completed>.<name>`` (one per
  watcher, so two watchers on one asset never share a key). On a miss it reads, once, the key every watcher used
  before (``housecallpro.detector``) when that holds a state of this watcher's kind, then the Variable (a
  deployment upgraded from 3.0-3.2 carries its state over instead of going live again).
- Airflow 3.0-3.2: the Variable ``housecallpro_watcher__<name>`` (JSON).

Every read and write is one supervisor round trip that a cancelled trigger cannot cut off half-way
(:mod:`airflow_provider_housecallpro.supervisor`); the Variable calls run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from airflow_provider_housecallpro.events.detector import EventType
from airflow_provider_housecallpro.supervisor import in_thread, round_trip
from airflow_provider_housecallpro.triggers.watcher_state import kind_of, short_kind

LEGACY_ASSET_STORE_KEY = "housecallpro.detector"  # every watcher's key before it became per watcher
VARIABLE_PREFIX = "housecallpro_watcher__"
VARIABLE_DESCRIPTION = "Housecall Pro event trigger state (do not edit)"


class StateStore(Protocol):
    where: str  # what holds the state, for messages ("Variable 'x'", "asset 'a' state store key 'k'")
    asset: str | None  # the asset whose store holds it (None: a Variable)

    async def load(self) -> Any | None: ...

    async def save(self, value: dict[str, Any]) -> None: ...


def variable_key(name: str) -> str:
    return f"{VARIABLE_PREFIX}{name}"


def asset_store_key(kind: EventType, name: str) -> str:
    return f"{LEGACY_ASSET_STORE_KEY}.{short_kind(kind)}.{name}"


def ours(value: Any, kind: EventType) -> bool:
    """A value in a shared place (the legacy key, an upgraded Variable) belongs to a ``kind`` watcher unless it
    says it is another kind's (a value that cannot tell is taken: reading it then says what is wrong)."""
    return value is not None and kind_of(value) in (kind, None)


def decode(raw: Any) -> Any | None:
    """A Variable's text as JSON (None when empty)."""
    if raw in (None, ""):
        return None
    return json.loads(raw) if isinstance(raw, str) else raw


def encode(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


async def _variable_get(key: str) -> Any | None:
    from airflow.providers.common.compat.sdk import Variable

    return decode(await in_thread(Variable.get, key, default=None))


async def _variable_set(key: str, value: dict[str, Any]) -> None:
    from airflow.providers.common.compat.sdk import Variable

    await in_thread(Variable.set, key, encode(value), description=VARIABLE_DESCRIPTION)


class VariableStore:
    """Airflow 3.0-3.2: one Variable per watcher name."""

    def __init__(self, name: str) -> None:
        self.asset: str | None = None
        self.key = variable_key(name)
        self.where = f"Variable {self.key!r}"

    async def load(self) -> Any | None:
        return await _variable_get(self.key)

    async def save(self, value: dict[str, Any]) -> None:
        await _variable_set(self.key, value)


class AssetStore:
    """Airflow >= 3.3: the watched asset's state store (the accessor the triggerer injects), one key per watcher."""

    def __init__(self, accessor: Any, kind: EventType, name: str) -> None:
        self.accessor = accessor
        self.kind = kind
        self.key = asset_store_key(kind, name)
        self.fallback = VariableStore(name)
        named = _asset_name(accessor)
        self.asset: str | None = named or "ASSET_NAME"  # for the reset command, which needs it
        self.where = f"asset {named!r} state store key {self.key!r}" if named else f"asset state store key {self.key!r}"

    async def _get(self, key: str) -> Any | None:
        try:
            return await round_trip(self.accessor.aget(key))
        except ValueError as exc:  # one trigger row behind several assets (identical kwargs)
            raise ValueError(
                f"{exc} -- several assets share this watcher's trigger: give each asset's trigger its own `name`"
            ) from None

    async def load(self) -> Any | None:
        value = await self._get(self.key)
        if value is not None:
            return value
        legacy = await self._get(LEGACY_ASSET_STORE_KEY)
        if ours(legacy, self.kind):
            return legacy
        try:  # upgraded from Airflow 3.0-3.2: the Variable holds the state
            upgraded = await self.fallback.load()
        except ImportError:  # not inside an Airflow component (no supervisor to ask): no Variables either
            return None
        return upgraded if ours(upgraded, self.kind) else None

    async def save(self, value: dict[str, Any]) -> None:
        await round_trip(self.accessor.aset(self.key, value))


def _asset_name(accessor: Any) -> str | None:
    """The one asset behind the triggerer's accessor, for messages (Airflow keeps it in a private mapping)."""
    names = list(getattr(accessor, "_by_name", None) or ())
    return names[0] if len(names) == 1 else None


def state_store(trigger: Any, kind: EventType, name: str) -> StateStore:
    """The store for ``trigger``: the asset state store when the triggerer gave it one, else a Variable."""
    accessor = getattr(trigger, "asset_state_store", None)
    if accessor is not None:
        return AssetStore(accessor, kind, name)
    return VariableStore(name)
