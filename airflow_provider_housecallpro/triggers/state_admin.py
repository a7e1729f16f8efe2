"""``housecallpro watcher-state show|reset``: a watcher's stored state, read and deleted through Airflow's metadata DB.

It looks where the watcher looks (:mod:`.state_store`), in the same order: on Airflow >= 3.3 the asset's state store
(its own key, then the legacy key and the Variable when they hold a state of its kind), on Airflow 3.0-3.2 the
Variable. It runs where the ``airflow`` command runs (it needs the metadata DB, not the API server).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_housecallpro.events.detector import EventType
from airflow_provider_housecallpro.triggers.state_store import (
    LEGACY_ASSET_STORE_KEY,
    asset_store_key,
    decode,
    ours,
    variable_key,
)
from airflow_provider_housecallpro.triggers.watcher_state import kind_of, summary


class StateAdminError(Exception):
    """The command cannot do what was asked (the message says why and what to do)."""


@dataclass
class Place:
    where: str
    value: Any
    delete: Callable[[], None]
    shared: bool  # a place other watchers may use too (the legacy key, a Variable read after an upgrade)


def has_asset_store() -> bool:
    """Airflow >= 3.3: watchers keep their state in the asset state store."""
    return importlib.util.find_spec("airflow.models.asset_state_store") is not None


def places(name: str, kind: EventType, asset: str | None, session: Any) -> list[Place]:
    """Where the watcher looks, in its order, that hold something."""
    found = []
    if has_asset_store():
        if not asset:
            raise StateAdminError(
                "--asset is needed on Airflow >= 3.3: a watcher's state lives in its asset's state store "
                "(the asset's name; for Asset('housecallpro://jobs/completed') that is the URI)"
            )
        found += _asset_places(name, kind, asset, session)
    found += _variable_places(name, session)
    return found


def _asset_places(name: str, kind: EventType, asset: str, session: Any) -> list[Place]:
    from airflow._shared.state import AssetScope  # type: ignore[import-not-found,unused-ignore]
    from airflow.models.asset import AssetModel
    from airflow.state import get_state_backend  # type: ignore[import-not-found,unused-ignore]
    from sqlalchemy import select

    ids = session.scalars(select(AssetModel.id).where(AssetModel.name == asset).order_by(AssetModel.id.desc())).all()
    if not ids:
        raise StateAdminError(f"no asset named {asset!r} in the metadata DB (give the asset's name)")
    backend, scope = get_state_backend(), AssetScope(asset_id=ids[0])
    found = []
    for key, shared in ((asset_store_key(kind, name), False), (LEGACY_ASSET_STORE_KEY, True)):
        raw = backend.get(scope, key, session=session)
        if raw is not None:
            where = f"asset {asset!r} state store key {key!r}"
            found.append(Place(where, json.loads(raw), _delete(backend, scope, key, session), shared))
    return found


def _variable_places(name: str, session: Any) -> list[Place]:
    from airflow.models.variable import Variable
    from sqlalchemy import select

    key = variable_key(name)
    row = session.scalar(select(Variable).where(Variable.key == key))
    if row is None:
        return []
    return [Place(f"Variable {key!r}", decode(row.val), lambda: session.delete(row), has_asset_store())]


def _delete(backend: Any, scope: Any, key: str, session: Any) -> Callable[[], None]:
    return lambda: backend.delete(scope, key, session=session)


def in_use(found: list[Place], kind: EventType) -> list[Place]:
    """The places this watcher reads (a shared place holding another kind's state is not its)."""
    return [p for p in found if not p.shared or ours(p.value, kind)]


def show(name: str, kind: EventType, asset: str | None) -> dict[str, Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        found = places(name, kind, asset, session)
        mine = in_use(found, kind)
        return {
            "watcher": name,
            "kind": kind,
            "stores": [
                {"store": p.where, "read_by_this_watcher": p in mine, "first": p is (mine[0] if mine else None)}
                | summary(p.value, kind)
                for p in found
            ],
        }


def reset(name: str, kind: EventType, asset: str | None) -> list[str]:
    """Delete what the watcher would read; the stores deleted."""
    from airflow.utils.session import create_session

    with create_session() as session:
        found = places(name, kind, asset, session)
        for place in found:
            other = kind_of(place.value)
            if not place.shared and place.where.startswith("Variable") and other not in (None, kind):
                raise StateAdminError(
                    f"{place.where} holds a {other} watcher's state: two watchers share the name {name!r}. "
                    "Give each watcher its own `name` instead (deleting it would reset the other watcher)"
                )
        mine = in_use(found, kind)
        for place in mine:
            place.delete()
        return [p.where for p in mine]
