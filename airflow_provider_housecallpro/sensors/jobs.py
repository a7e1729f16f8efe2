"""JobScheduledSensor and JobCompletedSensor: the product's two triggers as deferrable Airflow sensors.

Both return a list of event payloads (XCom ``return_value``), oldest first, ready for ``.expand()``;
see :mod:`airflow_provider_housecallpro.events.payload` for the shape.

Where the state lives: in the sensor's own XCom (key ``housecallpro_state``), pushed by the same try that
returns the events. Airflow clears a failed try's XComs, so a failed try's events and its state vanish
together and the retry finds the same changes again (with the same ``event.id``). A run reads exactly one
earlier state: the newest one of this task in an earlier DAG run (``XCom.get_one`` with
``include_prior_dates``: one row, newest logical date first), never a list of all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
)

from airflow_provider_housecallpro import options
from airflow_provider_housecallpro.api.models import parse_timestamp
from airflow_provider_housecallpro.events.detector import (
    COMPLETED,
    SCHEDULED,
    DetectorSettings,
    DetectorState,
    EventType,
    PollResult,
)
from airflow_provider_housecallpro.events.filters import JobFilter
from airflow_provider_housecallpro.events.payload import EVENT_KEYS
from airflow_provider_housecallpro.events.poll import find_plan, poll_plan
from airflow_provider_housecallpro.events.state import StateError
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.options import detector_settings
from airflow_provider_housecallpro.triggers.jobs import (
    JobCompletedTrigger,
    JobEventsTrigger,
    JobScheduledTrigger,
)

STATE_XCOM_KEY = "housecallpro_state"
DEFAULT_MAX_EVENTS = 100


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _has_template(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_has_template(v) for v in value)
    return _templated(value)


def find_records(
    kind: EventType,
    *,
    housecallpro_conn_id: str = HousecallProHook.default_conn_name,
    filters: JobFilter | Mapping[str, Any] | None = None,
    limit: int = 5,
    hook: HousecallProHook | None = None,
) -> list[dict[str, Any]]:
    """The most recent matching jobs, in exactly the payload shape the sensor pushes ("Find new records")."""
    hook = hook or HousecallProHook(housecallpro_conn_id)
    settings = DetectorSettings(kind=kind, filter=JobFilter.parse(filters))
    return hook.poll_job_events(find_plan(settings, datetime.now(UTC), limit=limit)).events


class JobEventSensor(BaseSensorOperator):
    """Wait for Housecall Pro job events (base of the two concrete sensors).

    :param housecallpro_conn_id: the Housecall Pro connection.
    :param filters: a :class:`~airflow_provider_housecallpro.events.filters.JobFilter` or its dict form
        (templated). Validated when the DAG is parsed.
    :param since: go-live for the very first run (no remembered state; ISO-8601 or datetime, templated):
        jobs created after it fire as bookings, completions after it fire; every job that existed before
        it is history, and only its later changes fire. Default: when the first DAG run started (the same
        across that run's retries). Ignored once state exists.
    :param max_events: deliver at most this many events per run (default 100, ``None`` for no cap); the
        rest are delivered by the next runs, none lost. Keeps XComs and trigger events small.
    :param deferrable: wait in the triggerer (default) instead of occupying a worker slot.
    :param poke_interval: seconds between polls (in the triggerer or on the worker).
    :param detector_options: ``page_size`` (pages of a long read, default 100), ``first_page_size`` (the
        idle poll's page, default 10), ``lookback`` (s, default 300: how far below its cursor each poll reads,
        so a change that becomes visible late — a slow commit, a lagging replica — still fires once; ``overlap`` is
        its first name, ``settle`` is accepted and no longer used), ``retention`` (s, default 30 days),
        ``max_tracked`` (default 50,000; jobs starting in the future are always kept),
        ``reconcile_interval`` (s, default 900: how often the upcoming window is re-read).
    :param client_options: HTTP client overrides (``timeout``, ``max_retries``, ...).
    """

    kind: ClassVar[EventType]
    trigger_class: ClassVar[type[JobEventsTrigger]]
    template_fields: Sequence[str] = ("filters", "since")
    template_fields_renderers: ClassVar[dict[str, str]] = {"filters": "json"}
    ui_color = "#c6e2ff"

    def __init__(
        self,
        *,
        housecallpro_conn_id: str = HousecallProHook.default_conn_name,
        filters: JobFilter | Mapping[str, Any] | str | None = None,
        since: datetime | str | None = None,
        max_events: int | None = DEFAULT_MAX_EVENTS,
        deferrable: bool = True,
        poke_interval: float = 60.0,
        detector_options: Mapping[str, Any] | None = None,
        client_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=options.poke_interval(poke_interval), **kwargs)
        options.timeout(self.timeout)
        max_events = options.max_events(max_events)
        self.housecallpro_conn_id = housecallpro_conn_id
        # Validate now (DAG parse time) unless the value is a template rendered at run time.
        self.filters = self._check_filters(filters)
        self.since = since
        if since not in (None, "") and not _templated(since):
            try:
                parse_timestamp(since)
            except ValueError as exc:
                raise ValueError(f"since must be an ISO-8601 timestamp or a datetime: {exc}") from None
        self.max_events = max_events
        self.deferrable = deferrable
        self.detector_options = dict(detector_options or {})
        self.client_options = options.client_options(client_options)
        detector_settings(self.kind, {}, self.detector_options)  # bad options fail at parse time
        self._state: DetectorState | None = None
        self._saved: dict[str, Any] | None = None
        self._start: datetime | None = None

    @staticmethod
    def _check_filters(filters: Any) -> dict[str, Any] | str:
        """Validate at parse time what is already known; templated values are checked once rendered."""
        if isinstance(filters, str) and _templated(filters):
            return filters
        if isinstance(filters, Mapping):
            # Keys are always checked; a templated value stands in as "not set" until it is rendered.
            JobFilter.parse({k: None if _has_template(v) else v for k, v in filters.items()})
            return dict(filters)
        return JobEventSensor._filter_dict(filters)

    @staticmethod
    def _filter_dict(filters: Any) -> dict[str, Any]:
        if isinstance(filters, str):
            raise ValueError(f"filters must be a dict, a JobFilter or a template string; got {filters!r}")
        return JobFilter.parse(filters).to_dict()

    @cached_property
    def hook(self) -> HousecallProHook:
        return HousecallProHook(self.housecallpro_conn_id, client_options=self.client_options)

    @property
    def settings(self) -> DetectorSettings:
        return detector_settings(self.kind, self._filter_dict(self.filters), self.detector_options)

    # -- running --------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self._state = self._load_state(context)
        self._start = self._start_point(context) if self._state is None else None
        if not self.deferrable:
            return super().execute(context)  # pokes on the worker, see poke()
        result = self._poll()
        if result.events:
            return self._deliver(context, result)
        self._save_state(context, result)
        assert self._saved is not None
        timeout_at = datetime.now(UTC) + timedelta(seconds=float(self.timeout))
        self.defer(
            trigger=self.trigger_class(
                housecallpro_conn_id=self.housecallpro_conn_id,
                state=self._saved,
                filters=self._filter_dict(self.filters),
                poll_interval=float(self.poke_interval),
                max_events=self.max_events,
                timeout_at=timeout_at.isoformat(),
                detector_options=self.detector_options,
                client_options=self.client_options,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        result = self._poll()
        self._save_state(context, result)
        if result.events:
            return PokeReturnValue(is_done=True, xcom_value=self._deliver(context, result))
        return False

    def execute_complete(self, context: Context, event: Any = None) -> list[dict[str, Any]]:
        """Validate the trigger's event strictly, remember the new state, return the job events."""
        status = event.get("status") if isinstance(event, dict) else None
        if status == "error":
            raise AirflowException(f"Housecall Pro {self.kind} sensor failed: {event.get('message')}")  # type: ignore[union-attr]
        if status == "timeout":
            message = f"Housecall Pro {self.kind} sensor timed out: {event.get('message')}"  # type: ignore[union-attr]
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        if status != "success":
            raise AirflowException(f"Housecall Pro {self.kind} sensor got an unexpected trigger event: {event!r}")
        events = event.get("events")  # type: ignore[union-attr]
        if not isinstance(events, list) or not events or not all(self._is_event(e) for e in events):
            raise AirflowException(f"Housecall Pro {self.kind} trigger event carries no valid job events")
        try:
            state = DetectorState.from_json(event.get("state"), self.kind)  # type: ignore[union-attr]
        except StateError as exc:
            raise AirflowException(f"Housecall Pro {self.kind} trigger event carries an invalid state: {exc}") from None
        return self._deliver(context, PollResult(events=events, state=state, pending=event.get("pending", 0)))  # type: ignore[union-attr]

    def find_records(self, limit: int = 5) -> list[dict[str, Any]]:
        """What this sensor would push for the most recent matching jobs (the product's "Test your trigger")."""
        return find_records(self.kind, filters=self._filter_dict(self.filters), limit=limit, hook=self.hook)

    # -- internals ------------------------------------------------------------------------------
    def _is_event(self, event: Any) -> bool:
        return isinstance(event, dict) and event.keys() >= EVENT_KEYS and event["event"].get("type") == self.kind

    def _start_point(self, context: Context) -> datetime:
        """Where a first run (no remembered state) starts: ``since``, else when this DAG run started.

        The DAG run's start stays the same across retries, so a retry of a first run re-detects
        exactly what the failed try had found (a fresh "now" would lose it).
        """
        if self.since not in (None, ""):
            return parse_timestamp(self.since) or datetime.now(UTC)
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or getattr(context.get("ti"), "start_date", None)
        return parse_timestamp(started) or datetime.now(UTC)

    def _poll(self) -> PollResult:
        since = self._start if self._state is None else None
        plan = poll_plan(self.settings, self._state, datetime.now(UTC), since=since, max_events=self.max_events)
        result = self.hook.poll_job_events(plan)
        self._state = result.state
        if result.skipped:
            self.log.warning(
                "Housecall Pro: %d job(s) could not be read and were skipped: %s",
                len(result.skipped),
                ", ".join(result.skipped[:10]),
            )
        return result

    def _load_state(self, context: Context) -> DetectorState | None:
        """The state this sensor saved in its newest earlier run (None on the very first run).

        ``map_indexes`` makes Airflow read one XCom (``XCom.get_one``: newest logical date first) instead
        of the list of every earlier run's value that ``include_prior_dates`` alone returns.
        """
        ti = context["ti"]
        value = ti.xcom_pull(
            task_ids=self.task_id,
            key=STATE_XCOM_KEY,
            include_prior_dates=True,
            map_indexes=getattr(ti, "map_index", -1),
        )
        if value is None:
            self.log.info("First %s run (no earlier state): what exists now is history; later changes fire", self.kind)
            return None
        try:
            state = DetectorState.from_json(value)
        except StateError as exc:
            raise AirflowException(
                f"The {self.kind} state saved by an earlier run of task {self.task_id!r} (XCom "
                f"{STATE_XCOM_KEY!r}) cannot be read: {exc}. Delete that XCom to start afresh (go-live again)."
            ) from None
        if state.kind != self.kind:
            self.log.warning("Ignoring state of a %s sensor under the same task id; starting afresh", state.kind)
            return None
        self._saved = state.to_json()
        return state

    def _save_state(self, context: Context, result: PollResult) -> None:
        """Remember progress. Safe at any point: the state only covers changes that fired nothing or
        events that this same try returns (a failed try's XComs are cleared before its retry)."""
        state = result.state.to_json()
        if state != self._saved:
            context["ti"].xcom_push(key=STATE_XCOM_KEY, value=state)
            self._saved = state

    def _deliver(self, context: Context, result: PollResult) -> list[dict[str, Any]]:
        self._save_state(context, result)
        summary = ", ".join(
            f"{e['job']['id']}{' (reschedule)' if e['event']['is_reschedule'] else ''}" for e in result.events[:10]
        ) + (f" and {len(result.events) - 10} more" if len(result.events) > 10 else "")
        self.log.info("Housecall Pro: %d %s event(s): %s", len(result.events), self.kind, summary)
        if result.pending:
            self.log.info(
                "%d more event(s) held back by max_events=%s for the next run", result.pending, self.max_events
            )
        return result.events


class JobScheduledSensor(JobEventSensor):
    """Fires when a job is booked (``is_reschedule`` false) or its schedule changes (true)."""

    kind = SCHEDULED
    trigger_class = JobScheduledTrigger


class JobCompletedSensor(JobEventSensor):
    """Fires once per job when it is marked complete."""

    kind = COMPLETED
    trigger_class = JobCompletedTrigger
