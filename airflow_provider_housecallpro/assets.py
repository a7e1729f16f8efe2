"""Consuming Housecall Pro asset events: each change processed once, whatever Airflow delivers.

On Airflow 3.0-3.3 a DAG run scheduled on an asset does not always carry every event since the previous run
(events that arrive while a run is being created are left for a later run, see README "Sensor or watcher"),
and a watcher may deliver an event twice (a triggerer restart before its state was written; two triggerers
on Airflow 3.0-3.2). :func:`job_events` returns what a run should process::

    @task(inlets=[bookings])
    def new_events(**context):
        return job_events(context, bookings)

- the run's triggering events for the asset, plus the asset's recent events that no run of this DAG has
  processed (when the task declares the asset as an inlet: the ones Airflow left unattached),
- minus the ones this DAG already processed: an idempotency ledger keyed by ``event.id``, kept in the Variable
  ``housecallpro_ledger__<dag_id>__<asset name>`` (see :func:`ledger_key`). A retry of the same task in the same
  run gets the same events.

A watcher that cannot use its stored state yields one error event instead of job events (see
:class:`~airflow_provider_housecallpro.triggers.events.JobEventsEventTrigger`); the run shown it fails here with
:class:`~airflow_provider_housecallpro.triggers.watcher_state.WatcherStateError`, whose message names the watcher, the
store and the command that resets it.

Run consumers with ``max_active_runs=1`` (the ledger is read and written by one run at a time), and schedule them
on ``AssetOrTimeSchedule`` so an unattached event waits at most one sweep.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_housecallpro.events.ledger import Ledger, LedgerError
from airflow_provider_housecallpro.events.payload import EVENT_KEYS
from airflow_provider_housecallpro.triggers.watcher_state import ERROR, WatcherStateError, describe

log = logging.getLogger(__name__)

LEDGER_PREFIX = "housecallpro_ledger__"
DEFAULT_LOOKBACK = timedelta(days=1)

JobEvent = dict[str, Any]


def ledger_key(dag_id: str, asset_name: str) -> str:
    """``housecallpro_ledger__<dag_id>__<asset>``, URL-path safe (Airflow 3.0's execution API cannot route a
    Variable key with ``/`` in it, and asset names are often URIs): other characters become ``_`` and a short
    hash of the real name keeps two names from colliding."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", asset_name)
    if safe != asset_name:
        safe += "_" + hashlib.blake2b(asset_name.encode(), digest_size=4).hexdigest()
    key = f"{LEDGER_PREFIX}{dag_id}__{safe}"
    if len(key) <= 250:
        return key
    return f"{LEDGER_PREFIX}{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"


def _payload(asset_event: Any) -> JobEvent | None:
    extra = getattr(asset_event, "extra", None) or {}
    payload = extra.get("payload") if isinstance(extra, Mapping) else None
    if isinstance(payload, Mapping) and set(payload) >= EVENT_KEYS and isinstance(payload.get("event"), Mapping):
        return dict(payload)
    return None


def _webhook_payload(asset_event: Any) -> JobEvent | None:
    """A raw webhook event's payload (see :func:`webhook_asset`)."""
    extra = getattr(asset_event, "extra", None) or {}
    payload = extra.get("payload") if isinstance(extra, Mapping) else None
    if isinstance(payload, Mapping) and isinstance(payload.get("webhook"), Mapping) and "id" in payload["webhook"]:
        return dict(payload)
    return None


def _meta(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """``event`` of a job event, ``webhook`` of a raw webhook event: where the id is."""
    meta = payload.get("event")
    return meta if isinstance(meta, Mapping) else payload["webhook"]  # type: ignore[no-any-return]


def _failures(asset_events: Iterable[Any], ledger: Ledger, run_id: str) -> list[tuple[dict[str, Any], int]]:
    """The error events of a stopped watcher (see ``JobEventsEventTrigger``) this run has not had yet, one per id."""
    found: dict[str, tuple[dict[str, Any], int]] = {}
    for asset_event in asset_events:
        extra = getattr(asset_event, "extra", None) or {}
        payload = extra.get("payload") if isinstance(extra, Mapping) else None
        error = payload.get(ERROR) if isinstance(payload, Mapping) else None
        if isinstance(error, Mapping) and "id" in error and not ledger.taken(str(error["id"]), run_id):
            found.setdefault(str(error["id"]), (dict(error), _when(asset_event)))
    return list(found.values())


def _when(asset_event: Any) -> int:
    stamp = getattr(asset_event, "timestamp", None)
    return int(stamp.timestamp()) if isinstance(stamp, datetime) else int(datetime.now(UTC).timestamp())


def _triggering(context: Mapping[str, Any], asset: Any) -> list[Any]:
    """The run's triggering events of ``asset`` (an Asset is not hashable on Airflow 3.0: no dict lookups)."""
    accessor = context.get("triggering_asset_events")
    if accessor is None:
        return []
    try:
        return list(accessor[asset] or [])
    except KeyError:
        return []


def _recent(context: Mapping[str, Any], asset: Any, after: datetime) -> list[Any]:
    """The asset's events after ``after`` when the task has it as an inlet (else none).

    When the API server answers 500 to that read (after the Task SDK's own retries), the run processes its
    triggering events and leaves the rest to the next run: unclaimed events stay in the look-back. Airflow 3.0's
    execution API does this whenever one of the asset's events has created a run that has not started yet (its
    response model requires the run's ``start_date``), so a sweep run that coincides with new events would fail
    every try otherwise."""
    try:
        accessor = context["inlet_events"][asset]
        if hasattr(accessor, "after"):  # Airflow >= 3.1: filtered by the API server
            accessor = accessor.after(after.isoformat())
        events = list(accessor)
    except (KeyError, IndexError):
        return []
    except Exception as exc:
        if _server_error(exc) != 500:
            raise
        log.warning(
            "Housecall Pro: the API server could not list the recent events of asset %r (500: %s); this run "
            "processes its triggering events, the next run the rest",
            getattr(asset, "name", asset),
            exc,
        )
        return []
    return [e for e in events if getattr(e, "timestamp", after) > after]


def _server_error(exc: BaseException) -> int | None:
    """The HTTP status of a Task SDK ``AirflowRuntimeError`` for an API-server error, else None."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType

    if not isinstance(exc, AirflowRuntimeError) or exc.error.error != ErrorType.API_SERVER_ERROR:
        return None
    status = (exc.error.detail or {}).get("status_code")
    return status if isinstance(status, int) else None


def select(
    candidates: Iterable[tuple[JobEvent, int]], ledger: Ledger, run_id: str
) -> tuple[list[JobEvent], list[tuple[str, int]]]:
    """The events to process (first occurrence of each ``event.id``, oldest first) and what to claim."""
    chosen: dict[str, tuple[JobEvent, int]] = {}
    for payload, when in candidates:
        event_id = str(_meta(payload)["id"])
        if event_id not in chosen and not ledger.taken(event_id, run_id):
            chosen[event_id] = (payload, when)
    ordered = sorted(
        chosen.items(),
        key=lambda item: (
            item[1][1],
            str(_meta(item[1][0]).get("detected_at") or _meta(item[1][0]).get("received_at")),
            item[0],
        ),
    )
    return [payload for _, (payload, _) in ordered], [(event_id, when) for event_id, (_, when) in ordered]


def job_events(
    context: Mapping[str, Any],
    asset: Any,
    *,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> list[JobEvent]:
    """The Housecall Pro job events this run should process, each ``event.id`` once per DAG (see module doc).

    :param context: the task's context.
    :param asset: the ``Asset`` whose watcher is a Housecall Pro event trigger.
    :param lookback: how far back to look for events no run processed (needs ``inlets=[asset]``); the ledger
        remembers processed ids twice as long.
    """
    return _consume(context, asset, lookback, _payload)


def webhook_events(
    context: Mapping[str, Any],
    asset: Any,
    *,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> list[dict[str, Any]]:
    """The raw webhook events (:func:`webhook_asset`) this run should process, each ``webhook.id`` once per DAG: as
    :func:`job_events` (the run's triggering events plus the ones Airflow left unattached, with ``inlets=[asset]``;
    a delivery Housecall Pro retried has the same ``webhook.id``)."""
    return _consume(context, asset, lookback, _webhook_payload)


def _consume(
    context: Mapping[str, Any],
    asset: Any,
    lookback: timedelta,
    read: Callable[[Any], JobEvent | None],
) -> list[JobEvent]:
    from airflow.providers.common.compat.sdk import Variable

    dag_id = context["dag"].dag_id if "dag" in context else context["ti"].dag_id
    run_id = context["run_id"]
    name = getattr(asset, "name", str(asset))
    key = ledger_key(dag_id, name)
    raw = Variable.get(key, default=None)
    try:
        ledger = Ledger.from_json(json.loads(raw) if raw else None)
    except ValueError as exc:  # never guess: a fresh ledger would process everything in the look-back again
        raise LedgerError(
            f"Variable {key!r} does not hold a readable ledger ({exc}); delete it to start afresh"
        ) from None

    triggering = _triggering(context, asset)
    now = datetime.now(UTC)
    if raw is None:  # a new consumer starts with the events that trigger it, not with the asset's history
        ledger.since = min((_when(e) for e in triggering), default=int(now.timestamp()))
    after = max(now - lookback, datetime.fromtimestamp(ledger.since, UTC) - timedelta(seconds=1))
    recent = _recent(context, asset, after)
    shown = (*triggering, *recent)
    failures = _failures(shown, ledger, run_id)
    candidates = [(payload, _when(event)) for event in shown if (payload := read(event)) is not None]
    events, claims = select(candidates, ledger, run_id)
    # A watcher that stopped on an unusable state fails the run that is shown its error event (and a retry of it),
    # with the fix in the task log; the run claims only the error, so its job events go to the next run.
    ledger.claim(run_id, [(str(error["id"]), when) for error, when in failures] if failures else claims)
    ledger.prune(int((now - 2 * lookback).timestamp()))
    Variable.set(key, json.dumps(ledger.to_json()), description="Housecall Pro events processed by this DAG")
    if failures:
        for error, _ in failures:
            log.error("%s", describe(error))
        raise WatcherStateError(failures[0][0])
    dropped = len({str(_meta(p)["id"]) for p, _ in candidates}) - len(events)
    log.info(
        "Housecall Pro: %d event(s) to process (%d triggering, %d recent asset events, %d already processed)",
        len(events),
        len(triggering),
        len(recent),
        dropped,
    )
    return events


def webhook_asset(event: str) -> Any:
    """The asset a raw webhook event is recorded on (README "Real-time (webhooks)"): schedule a DAG on
    ``webhook_asset("invoice.paid")`` and the receiver records every ``invoice.paid`` delivery as an event of it, with
    ``extra["payload"]`` = ``{"webhook": {"id", "event", "occurred_at", "company_id", "received_at"}, "<resource>":
    {...the record Housecall Pro sent...}}``. No watcher, no polling: only deliveries the receiver accepted."""
    from airflow.sdk import Asset

    from airflow_provider_housecallpro.webhooks.deliveries import EVENT_NAME, raw_asset_name

    if not isinstance(event, str) or not EVENT_NAME.fullmatch(event):
        raise ValueError(f"event must be a Housecall Pro event name like 'invoice.paid'; got {event!r}")
    return Asset(name=raw_asset_name(event), uri=f"housecallpro://webhooks/{event}")
