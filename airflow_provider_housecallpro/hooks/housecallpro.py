"""HousecallProHook: the ``housecallpro`` connection type, with sync and async access to the API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from airflow.providers.common.compat.sdk import BaseHook
from pydantic import BaseModel

from airflow_provider_housecallpro import CLIENT_EXTRAS, CONN_FIELDS, CONN_TYPE, EXTRA_BOUNDS, plain_text
from airflow_provider_housecallpro.api import matching
from airflow_provider_housecallpro.api import operations as ops
from airflow_provider_housecallpro.api.client import AsyncHousecallProClient, HousecallProClient
from airflow_provider_housecallpro.api.core import ClientConfig
from airflow_provider_housecallpro.api.errors import (
    HousecallProAuthError,
    HousecallProConfigError,
    HousecallProError,
)
from airflow_provider_housecallpro.api.models import (
    Company,
    Customer,
    CustomerCreate,
    Employee,
    Job,
    LeadSource,
    Page,
    validate_input,
)
from airflow_provider_housecallpro.api.query import CustomersQuery, JobsQuery, SimpleListQuery
from airflow_provider_housecallpro.events.detector import PollResult
from airflow_provider_housecallpro.events.poll import PollPlan, adrive, drive
from airflow_provider_housecallpro.supervisor import round_trip
from airflow_provider_housecallpro.urls import DEFAULT_BASE_URL, base_url


class ConnectionLike(Protocol):
    """What we read of an Airflow connection (task-SDK and core connections both fit)."""

    conn_id: str
    host: str | None
    port: int | None
    schema: str | None
    password: str | None


Q = TypeVar("Q", bound=BaseModel)


# The Test button: one attempt, connect + read within 10 s.
TEST_CLIENT_OPTIONS = {"max_retries": 0, "connect_timeout": 4.0, "timeout": 6.0}
TEST_SECONDS = 10.0


def config_from_connection(
    conn: ConnectionLike,
    extras: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> ClientConfig:
    """Build a client config from a connection: password = API key, host = optional base URL, extras.

    ``source`` names the connection in error messages (default: ``connection '<id>'``).
    """
    source = source or f"connection {conn.conn_id!r}"
    values: dict[str, Any] = {}
    for key in (*CLIENT_EXTRAS, "connect_timeout", "backoff_base", "backoff_max", "retry_after_max"):
        raw = extras.get(key, extras.get(f"extra__{CONN_TYPE}__{key}"))
        if raw is None or raw == "":
            continue
        values[key] = _coerce_extra(key, raw, source)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return ClientConfig(
        api_key=(conn.password or "").strip(),
        base_url=base_url(conn.host, conn.port, conn.schema, DEFAULT_BASE_URL),
        source=source,
        user_agent_extra=_airflow_agent(),
        **values,
    )


def _coerce_extra(key: str, raw: Any, source: str) -> Any:
    if key == "company_id":
        return str(raw).strip()
    try:
        value = int(raw) if key == "max_retries" else float(raw)
    except (TypeError, ValueError):
        kind = "a whole number" if key == "max_retries" else "a number of seconds"
        raise HousecallProConfigError(f"Extra {key!r} in {source} must be {kind}; got {raw!r}") from None
    if key in EXTRA_BOUNDS:
        low, high = EXTRA_BOUNDS[key]
        if value < low or (high is not None and value > high):
            rule = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise HousecallProConfigError(f"Extra {key!r} in {source} must be {rule}; got {raw!r}")
    return value


def _airflow_agent() -> str:
    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover
        return ""
    return f"apache-airflow/{airflow_version}"


class HousecallProHook(BaseHook):
    """Talk to Housecall Pro with the API key stored in an Airflow connection.

    The connection's **password** is the API key; **host** optionally overrides the API base URL
    (``https://api.housecallpro.com``, or the local sandbox); extras ``timeout``, ``max_retries`` and
    ``company_id`` (sent as ``X-Company-Id``) tune the client. Every API method has an async twin
    prefixed with ``a`` that resolves the connection without blocking the event loop.

    :param housecallpro_conn_id: connection id, default ``housecallpro_default``.
    :param client_options: overrides of the client settings (``timeout``, ``max_retries``,
        ``backoff_base``, ``backoff_max``, ``retry_after_max``, ``connect_timeout``).
    """

    conn_name_attr = "housecallpro_conn_id"
    default_conn_name = "housecallpro_default"
    conn_type = CONN_TYPE
    hook_name = "Housecall Pro"

    def __init__(
        self,
        housecallpro_conn_id: str = default_conn_name,
        *,
        client_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.housecallpro_conn_id = housecallpro_conn_id
        from airflow_provider_housecallpro.options import client_options as check_client_options

        self.client_options = check_client_options(client_options)
        self._client: HousecallProClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(housecallpro_conn_id={self.housecallpro_conn_id!r})"

    # -- connection form (Airflow 3.0/3.1; 3.2+ reads conn-fields from provider info) -------------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, PasswordField, StringField
        from wtforms.validators import NumberRange, Optional

        def label(key: str) -> Any:
            return lazy_gettext(CONN_FIELDS[key]["label"])

        def description(key: str) -> str:
            return plain_text(CONN_FIELDS[key]["schema"]["description_md"])

        def bounds(key: str) -> NumberRange:
            low, high = EXTRA_BOUNDS[key]
            return NumberRange(min=low, max=high)

        # No defaults, bounds from EXTRA_BOUNDS (see CONN_FIELDS).
        return {
            "timeout": IntegerField(
                label("timeout"),
                validators=[Optional(), bounds("timeout")],
                widget=BS3TextFieldWidget(),
                description=description("timeout"),
            ),
            "max_retries": IntegerField(
                label("max_retries"),
                validators=[Optional(), bounds("max_retries")],
                widget=BS3TextFieldWidget(),
                description=description("max_retries"),
            ),
            "company_id": StringField(
                label("company_id"),
                widget=BS3TextFieldWidget(),
                description=description("company_id"),
            ),
            "dry_run": BooleanField(
                label("dry_run"),
                description=description("dry_run"),
            ),
            "webhook_secret": PasswordField(
                label("webhook_secret"),
                widget=BS3PasswordFieldWidget(),
                description=description("webhook_secret"),
            ),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_housecallpro import UI_FIELD_BEHAVIOUR

        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}

    # -- clients ----------------------------------------------------------------------------------
    def get_client_config(self) -> ClientConfig:
        conn = self.get_connection(self.housecallpro_conn_id)
        return config_from_connection(conn, conn.extra_dejson, self.client_options)

    async def aget_client_config(self) -> ClientConfig:
        # One uncancellable round trip (see airflow_provider_housecallpro.supervisor): on Airflow < 3.1 the lookup
        # is a sync SDK call in a worker thread, which a cancelled trigger must not cut off half-way.
        conn, extras = await round_trip(self._aconnection())
        return config_from_connection(conn, extras, self.client_options)

    async def _aconnection(self) -> tuple[Any, dict[str, Any]]:
        from airflow.providers.common.compat.connection import (
            get_async_connection,
            get_async_extra_dejson,
        )

        conn = await get_async_connection(self.housecallpro_conn_id, hook=type(self))
        return conn, await get_async_extra_dejson(conn)

    def get_conn(self) -> HousecallProClient:
        """The hook's sync client (created once per hook)."""
        if self._client is None:
            self._client = HousecallProClient(self.get_client_config())
        return self._client

    @contextlib.asynccontextmanager
    async def aget_conn(self) -> AsyncIterator[AsyncHousecallProClient]:
        """An async client for the duration of the ``async with`` block."""
        async with AsyncHousecallProClient(await self.aget_client_config()) as client:
            yield client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- connection test --------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: one ``GET /company``, no retries, answered within ``TEST_SECONDS``.

        Messages say "this connection", never its id: the UI tests under a temporary id the user never saw.
        """
        try:
            conn = self.get_connection(self.housecallpro_conn_id)
            config = config_from_connection(conn, conn.extra_dejson, TEST_CLIENT_OPTIONS, source="this connection")
            with HousecallProClient(config) as client:
                company = client.call(ops.get_company())
        except HousecallProAuthError as exc:
            return (
                False,
                f"Housecall Pro rejected the API key ({exc.status} {exc.api_message or ''}). {exc.hint}",
            )
        except HousecallProError as exc:
            return False, str(exc)
        zone = f" (time zone {company.time_zone})" if company.time_zone else ""
        return True, f"Connected to Housecall Pro company {company.name or company.id!r}{zone}"

    # -- company ----------------------------------------------------------------------------------
    def get_company(self) -> Company:
        return self.get_conn().call(ops.get_company())

    async def aget_company(self) -> Company:
        async with self.aget_conn() as client:
            return await client.call(ops.get_company())

    # -- jobs -------------------------------------------------------------------------------------
    def list_jobs(self, query: JobsQuery | None = None, **params: Any) -> Page[Job]:
        """One page of ``GET /jobs``. Filters are :class:`JobsQuery` fields (spec names)."""
        return self.get_conn().call(ops.list_jobs(_jobs_query(query, params)))

    async def alist_jobs(self, query: JobsQuery | None = None, **params: Any) -> Page[Job]:
        query = _jobs_query(query, params)
        async with self.aget_conn() as client:
            return await client.call(ops.list_jobs(query))

    def iter_job_pages(
        self, query: JobsQuery | None = None, *, max_pages: int | None = None, **params: Any
    ) -> Iterator[Page[Job]]:
        query = _jobs_query(query, params)
        yield from self.get_conn().pages(lambda n: ops.list_jobs(_page(query, n)), max_pages=max_pages)

    async def aiter_job_pages(
        self, query: JobsQuery | None = None, *, max_pages: int | None = None, **params: Any
    ) -> AsyncIterator[Page[Job]]:
        query = _jobs_query(query, params)
        async with self.aget_conn() as client:
            async for page in client.pages(lambda n: ops.list_jobs(_page(query, n)), max_pages=max_pages):
                yield page

    def iter_jobs(
        self, query: JobsQuery | None = None, *, max_pages: int | None = None, **params: Any
    ) -> Iterator[Job]:
        """Every job matching the query, page after page."""
        for page in self.iter_job_pages(query, max_pages=max_pages, **params):
            yield from page.items

    async def aiter_jobs(
        self, query: JobsQuery | None = None, *, max_pages: int | None = None, **params: Any
    ) -> AsyncIterator[Job]:
        async for page in self.aiter_job_pages(query, max_pages=max_pages, **params):
            for job in page.items:
                yield job

    def get_job(self, job_id: str, *, expand: list[str] | None = None) -> Job:
        return self.get_conn().call(ops.get_job(job_id, expand))

    async def aget_job(self, job_id: str, *, expand: list[str] | None = None) -> Job:
        async with self.aget_conn() as client:
            return await client.call(ops.get_job(job_id, expand))

    def get_job_line_items(self, job_id: str) -> list[dict[str, Any]]:
        return self.get_conn().call(ops.get_job_line_items(job_id))

    async def aget_job_line_items(self, job_id: str) -> list[dict[str, Any]]:
        async with self.aget_conn() as client:
            return await client.call(ops.get_job_line_items(job_id))

    # -- job events (the detector's page reads) --------------------------------------------------
    def poll_job_events(self, plan: PollPlan) -> PollResult:
        """Run a poll or find-records plan (see :mod:`~airflow_provider_housecallpro.events.poll`)."""
        client = self.get_conn()
        return drive(plan, lambda query: client.call(ops.list_jobs_raw(query)))

    async def apoll_job_events(self, plan: PollPlan) -> PollResult:
        async with self.ajob_event_poller() as run:
            return await run(plan)

    @contextlib.asynccontextmanager
    async def ajob_event_poller(self) -> AsyncIterator[Callable[[PollPlan], Awaitable[PollResult]]]:
        """Run many plans over one connection lookup and one HTTP client (a trigger's poll loop)."""
        async with self.aget_conn() as client:

            async def run(plan: PollPlan) -> PollResult:
                return await adrive(plan, lambda query: client.call(ops.list_jobs_raw(query)))

            yield run

    # -- customers --------------------------------------------------------------------------------
    def list_customers(self, query: CustomersQuery | None = None, **params: Any) -> Page[Customer]:
        return self.get_conn().call(ops.list_customers(_customers_query(query, params)))

    async def alist_customers(self, query: CustomersQuery | None = None, **params: Any) -> Page[Customer]:
        query = _customers_query(query, params)
        async with self.aget_conn() as client:
            return await client.call(ops.list_customers(query))

    def iter_customers(
        self, query: CustomersQuery | None = None, *, max_pages: int | None = None, **params: Any
    ) -> Iterator[Customer]:
        query = _customers_query(query, params)
        for page in self.get_conn().pages(lambda n: ops.list_customers(_page(query, n)), max_pages=max_pages):
            yield from page.items

    async def aiter_customers(
        self, query: CustomersQuery | None = None, *, max_pages: int | None = None, **params: Any
    ) -> AsyncIterator[Customer]:
        query = _customers_query(query, params)
        async with self.aget_conn() as client:
            async for page in client.pages(lambda n: ops.list_customers(_page(query, n)), max_pages=max_pages):
                for customer in page.items:
                    yield customer

    def find_customer(self, *, email: str | None = None, mobile_number: str | None = None) -> Customer | None:
        """The customer whose email (case-insensitive), or else phone number, matches exactly.

        The API's ``q`` search is fuzzy, so every hit is re-checked. Email is tried first, then the
        phone (mobile, home or work number). Of several exact matches the oldest record wins.
        """
        return matching.canonical(self._lookup(matching.lookup(email, mobile_number, first_only=True)))

    async def afind_customer(self, *, email: str | None = None, mobile_number: str | None = None) -> Customer | None:
        return matching.canonical(await self._alookup(matching.lookup(email, mobile_number, first_only=True)))

    def find_customer_matches(
        self, *, email: str | None = None, mobile_number: str | None = None
    ) -> list[list[Customer]]:
        """Every exact match: one list for the email (if given), then one for the phone (if given)."""
        return self._lookup(matching.lookup(email, mobile_number, first_only=False))

    async def afind_customer_matches(
        self, *, email: str | None = None, mobile_number: str | None = None
    ) -> list[list[Customer]]:
        return await self._alookup(matching.lookup(email, mobile_number, first_only=False))

    def _lookup(self, searches: matching.Lookup) -> list[list[Customer]]:
        try:
            q = next(searches)
            while True:
                q = searches.send(list(self.iter_customers(q=q)))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _alookup(self, searches: matching.Lookup) -> list[list[Customer]]:
        try:
            q = next(searches)
            while True:
                q = searches.send([c async for c in self.aiter_customers(q=q)])
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def get_customer(self, customer_id: str) -> Customer:
        return self.get_conn().call(ops.get_customer(customer_id))

    async def aget_customer(self, customer_id: str) -> Customer:
        async with self.aget_conn() as client:
            return await client.call(ops.get_customer(customer_id))

    def create_customer(self, customer: CustomerCreate | Mapping[str, Any]) -> Customer:
        """``POST /customers``. Input is validated (product rules) before any request is made."""
        operation = ops.create_customer(_customer_create(customer))  # validated before any connection lookup
        return self.get_conn().call(operation)

    async def acreate_customer(self, customer: CustomerCreate | Mapping[str, Any]) -> Customer:
        body = _customer_create(customer)
        async with self.aget_conn() as client:
            return await client.call(ops.create_customer(body))

    # -- reference data ---------------------------------------------------------------------------
    def list_lead_sources(self) -> list[LeadSource]:
        pages = self.get_conn().pages(lambda n: ops.list_lead_sources(SimpleListQuery(page=n)))
        return [item for page in pages for item in page.items]

    async def alist_lead_sources(self) -> list[LeadSource]:
        async with self.aget_conn() as client:
            pages = client.pages(lambda n: ops.list_lead_sources(SimpleListQuery(page=n)))
            return [item async for page in pages for item in page.items]

    def list_employees(self) -> list[Employee]:
        pages = self.get_conn().pages(lambda n: ops.list_employees(SimpleListQuery(page=n)))
        return [item for page in pages for item in page.items]

    async def alist_employees(self) -> list[Employee]:
        async with self.aget_conn() as client:
            pages = client.pages(lambda n: ops.list_employees(SimpleListQuery(page=n)))
            return [item async for page in pages for item in page.items]


def _query(model: type[Q], query: Q | None, params: Mapping[str, Any], what: str) -> Q:
    """Validate query parameters given as a query object and/or keyword arguments (keywords win)."""
    if query is not None and not params:
        return query
    base = query.model_dump(exclude_none=True) if query is not None else {}
    return validate_input(model, {**base, **params}, what=what)


def _jobs_query(query: JobsQuery | None, params: Mapping[str, Any]) -> JobsQuery:
    return _query(JobsQuery, query, params, "jobs query")


def _customers_query(query: CustomersQuery | None, params: Mapping[str, Any]) -> CustomersQuery:
    return _query(CustomersQuery, query, params, "customers query")


def _page(query: Any, page: int) -> Any:
    return query.model_copy(update={"page": page})


def _customer_create(customer: CustomerCreate | Mapping[str, Any]) -> CustomerCreate:
    if isinstance(customer, CustomerCreate):
        return customer
    return CustomerCreate.build(**customer)
