"""``housecallpro watcher-state show|reset`` against the suite's metadata DB, where the watcher keeps its state on the
Airflow of this venv: the asset state store (3.3) or the Variable (3.0-3.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_housecallpro import cli
from airflow_provider_housecallpro.events.detector import COMPLETED, SCHEDULED, DetectorState, EventType
from airflow_provider_housecallpro.triggers.state_admin import has_asset_store
from airflow_provider_housecallpro.triggers.state_store import (
    LEGACY_ASSET_STORE_KEY,
    asset_store_key,
    encode,
    variable_key,
)
from airflow_provider_housecallpro.triggers.watcher_state import state_value

T0 = 1_780_000_000
ASSET = "housecallpro://tests/state-admin"
PENDING = {"event": {"id": "job_1/s/1"}, "job": {"id": "job_1"}, "customer_phone": "5125550199"}
ASSET_STORE = has_asset_store()


def polled(kind: EventType) -> dict[str, Any]:
    return state_value(DetectorState(kind=kind, cursor=T0, horizon=T0, since=T0 - 3600), [PENDING])


@pytest.fixture
def asset_id(airflow_db: None) -> int:
    """The watched asset, registered as the DAG processor registers it; its state store and the Variables empty."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Variable).filter(Variable.key.like("housecallpro_watcher__%")).delete(synchronize_session=False)
        model = session.query(AssetModel).filter_by(name=ASSET, uri=ASSET).one_or_none()
        if model is None:
            model = AssetModel(name=ASSET, uri=ASSET, group="asset", extra={})
            session.add(model)
            session.flush()
            session.add(AssetActive.for_asset(model))
        if ASSET_STORE:
            from airflow.models.asset_state_store import AssetStateStoreModel

            session.query(AssetStateStoreModel).filter_by(asset_id=model.id).delete(synchronize_session=False)
        return int(model.id)


def put(asset_id: int, key: str, value: Any) -> None:
    """Write as the execution API does for a watcher: an asset state store row (3.3) or a Variable."""
    from airflow.utils.session import create_session

    with create_session() as session:
        if key.startswith("housecallpro.detector"):
            from airflow._shared.state import AssetScope
            from airflow.state import get_state_backend

            get_state_backend().set(AssetScope(asset_id=asset_id), key, json.dumps(value), session=session)
        else:
            from airflow.models.variable import Variable

            session.add(Variable(key=key, val=encode(value), description="Housecall Pro event trigger state"))


def own_place(kind: EventType, name: str) -> str:
    """Where a ``kind`` watcher called ``name`` keeps its state on this venv's Airflow."""
    return asset_store_key(kind, name) if ASSET_STORE else variable_key(name)


def where(kind: EventType, name: str) -> str:
    key = own_place(kind, name)
    return f"asset {ASSET!r} state store key {key!r}" if ASSET_STORE else f"Variable {key!r}"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    argv = ["watcher-state", *args, *(["--asset", ASSET] if ASSET_STORE else [])]
    capsys.readouterr()  # what came before (the test's own DB writes may log)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_show_prints_what_is_stored_and_where_never_an_events_contents(
    asset_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    put(asset_id, own_place(COMPLETED, "done"), polled(COMPLETED))
    code, out, _ = run(capsys, "show", "done", "--kind", "completed")
    assert code == 0
    shown = json.loads(out)
    assert (shown["watcher"], shown["kind"]) == ("done", "job.completed")
    (store,) = shown["stores"]
    assert store["store"] == where(COMPLETED, "done")
    assert store["read_by_this_watcher"] and store["readable"]
    assert (store["cursor"], store["since"]) == ("2026-05-28T20:26:40Z", "2026-05-28T19:26:40Z")
    assert (store["tracked_jobs"], store["pending_events"]) == (0, 1)
    assert "5125550199" not in out and "job_1" not in out


def test_reset_deletes_it_and_says_the_watcher_goes_live_again(
    asset_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    put(asset_id, own_place(SCHEDULED, "books"), {"detector": {"v": 2, "kind": "job.scheduled", "jobs": "!"}})
    code, out, _ = run(capsys, "show", "books", "--kind", "scheduled")
    (store,) = json.loads(out)["stores"]
    assert code == 0 and store["readable"] is False and "StateError" in store["error"]

    code, out, _ = run(capsys, "reset", "books", "--kind", "scheduled")
    assert code == 0
    assert f"Deleted {where(SCHEDULED, 'books')}." in out
    assert "goes live again at its next start" in out

    code, out, _ = run(capsys, "show", "books", "--kind", "scheduled")
    assert json.loads(out)["stores"] == []
    _, out, _ = run(capsys, "reset", "books", "--kind", "scheduled")
    assert "Nothing stored" in out


@pytest.mark.skipif(not ASSET_STORE, reason="the legacy asset-store key exists on Airflow >= 3.3 only")
def test_on_3_3_the_legacy_key_is_reset_only_by_the_watcher_of_its_kind(
    asset_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    put(asset_id, LEGACY_ASSET_STORE_KEY, polled(SCHEDULED))
    code, out, _ = run(capsys, "reset", "done", "--kind", "completed")
    assert code == 0 and "Nothing stored" in out  # the scheduled watcher's: not this one's
    code, out, _ = run(capsys, "show", "books", "--kind", "scheduled")
    (store,) = json.loads(out)["stores"]
    assert (
        store["store"] == f"asset {ASSET!r} state store key 'housecallpro.detector'" and store["read_by_this_watcher"]
    )
    _, out, _ = run(capsys, "reset", "books", "--kind", "scheduled")
    assert "Deleted asset" in out
    _, out, _ = run(capsys, "show", "books", "--kind", "scheduled")
    assert json.loads(out)["stores"] == []


@pytest.mark.skipif(not ASSET_STORE, reason="--asset is needed on Airflow >= 3.3 only")
def test_on_3_3_the_asset_is_needed(asset_id: int, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli.main(["watcher-state", "show", "done", "--kind", "completed"]) == 1
    assert "--asset is needed on Airflow >= 3.3" in capsys.readouterr().err
    assert cli.main(["watcher-state", "show", "done", "--kind", "completed", "--asset", "nope"]) == 1
    assert "no asset named 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(ASSET_STORE, reason="one Variable per name: Airflow 3.0-3.2")
def test_on_3_0_reset_refuses_to_delete_the_state_of_another_watcher_of_the_same_name(
    asset_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    put(asset_id, variable_key("shared"), polled(SCHEDULED))
    code, _, err = run(capsys, "reset", "shared", "--kind", "completed")
    assert code == 1 and "two watchers share the name 'shared'" in err
    _, out, _ = run(capsys, "show", "shared", "--kind", "scheduled")
    assert json.loads(out)["stores"][0]["readable"] is True  # untouched
