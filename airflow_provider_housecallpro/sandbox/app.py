"""FastAPI app: the Housecall Pro routes (spec names, envelopes, error bodies) and the ``/_sandbox`` admin API.

Query parameters are validated by hand so every error has a Housecall Pro shape, never FastAPI's
``{"detail": ...}``. Auth, the request log and faults live in :class:`~.faults.SandboxMiddleware`.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import operations
from .catalog import STATUS_FILTERS
from .clock import Clock, fmt_ts, parse_ts
from .faults import ADMIN_PREFIX, Accounts, FaultQueue, RequestLog, SandboxMiddleware, install_log_filter
from .records import (
    CUSTOMER_SORT_KEYS,
    EMPLOYEE_SORT_KEYS,
    JOB_SORT_KEYS,
    JSON,
    JobQuery,
    Named,
    WorldError,
    sort_records,
)
from .render import render_customer, render_employee, render_job
from .webhooks import WebhookSender
from .world import World

DEFAULT_ACCOUNT = "default"  # the name of the account of the sandbox's own API key
T = TypeVar("T")
MAX_PAGE_SIZE = 200
REQUIRED_ONE_OF = ("first_name", "last_name", "email", "mobile_number", "home_number", "work_number")
_CUSTOMER_STRINGS = (*REQUIRED_ONE_OF, "company", "lead_source", "notes")
_ADDRESS_KEYS = ("street", "street_line_2", "city", "state", "zip", "country")


class HCPError(Exception):
    """An error answered with a Housecall Pro body."""

    def __init__(self, status: int, body: JSON) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def _invalid(name: str, message: str = "is invalid") -> HCPError:
    return HCPError(422, {"errors": {name: [message]}})


class Params:
    """Hand-parsed query string: arrays only as repeated ``name[]=value``, like the live API."""

    def __init__(self, request: Request, arrays: Collection[str] = ()) -> None:
        self.scalars: dict[str, str] = {}
        self.arrays: dict[str, list[str]] = {name: [] for name in arrays}
        for key, value in request.query_params.multi_items():
            base = key.split("[", 1)[0]
            if base in self.arrays:
                if key != f"{base}[]":
                    raise HCPError(422, {"errors": {base: "must be an array"}})
                if value:
                    self.arrays[base].append(value)
            elif "[" not in key:
                self.scalars[key] = value

    def text(self, name: str) -> str | None:
        return self.scalars.get(name)

    def integer(self, name: str, default: int, maximum: int | None = None) -> int:
        raw = self.scalars.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _invalid(name, "is not a number") from None
        if value < 1:
            raise _invalid(name, "must be greater than 0")
        if maximum is not None and value > maximum:
            raise _invalid(name, f"must be less than or equal to {maximum}")
        return value

    def choice(self, name: str, default: str, allowed: Collection[str]) -> str:
        value = self.scalars.get(name) or default
        if value not in allowed:
            raise _invalid(name)
        return value

    def descending(self) -> bool:
        return self.choice("sort_direction", "desc", ("asc", "desc")) == "desc"

    def timestamp(self, name: str) -> datetime | None:
        raw = self.scalars.get(name)
        if not raw:
            return None
        try:
            return parse_ts(raw)
        except ValueError:
            raise _invalid(name) from None


def paginate(params: Params, key: str, items: Sequence[T]) -> tuple[list[T], JSON]:
    """The page slice and the envelope (``key`` still to be filled by the caller)."""
    page = params.integer("page", 1)
    size = params.integer("page_size", 10, MAX_PAGE_SIZE)
    start = (page - 1) * size
    envelope: JSON = {
        "page": page,
        "page_size": size,
        "total_pages": math.ceil(len(items) / size),
        "total_items": len(items),
        key: [],
    }
    return list(items[start : start + size]), envelope


def _named(items: Sequence[Named], editable: bool = False) -> list[JSON]:
    return [{"id": n.id, "name": n.name, **({"editable": n.editable} if editable else {})} for n in items]


async def _body(request: Request, empty_ok: bool) -> JSON:
    raw = await request.body()
    if not raw.strip() and empty_ok:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise HCPError(400, {"error": {"message": "Request body is not valid JSON"}}) from None
    if not isinstance(data, dict):
        raise HCPError(400, {"error": {"message": "Request body must be a JSON object"}})
    return data


def customer_errors(body: JSON) -> dict[str, Any]:
    """Type errors in a CustomerCreate body, in the live API's ``errors`` shape."""
    errors: dict[str, Any] = {}
    for key in _CUSTOMER_STRINGS:
        if body.get(key) is not None and not isinstance(body[key], str):
            errors[key] = ["must be a string"]
    if body.get("notifications_enabled") is not None and not isinstance(body["notifications_enabled"], bool):
        errors["notifications_enabled"] = ["must be a boolean"]
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        errors["tags"] = ["must be an array of strings"]
    addresses = body.get("addresses")
    if addresses is not None and not (
        isinstance(addresses, list)
        and all(
            isinstance(a, dict) and all(a.get(k) is None or isinstance(a[k], str) for k in _ADDRESS_KEYS)
            for a in addresses
        )
    ):
        errors["addresses"] = ["must be an array of addresses"]
    return errors


def _hcp_routes(world: World) -> APIRouter:
    router = APIRouter()

    @router.get("/company")
    async def company() -> JSONResponse:
        return JSONResponse(world.company)

    @router.get("/jobs")
    async def list_jobs(request: Request) -> JSONResponse:
        params = Params(request, ("employee_ids", "work_status", "location_ids", "expand"))
        statuses: set[str] = set()
        for value in params.arrays["work_status"]:
            if value not in STATUS_FILTERS:
                raise HCPError(422, {"errors": {"work_status": ["is invalid"]}})
            statuses |= STATUS_FILTERS[value]
        query = JobQuery(
            sort_by=params.choice("sort_by", "created_at", JOB_SORT_KEYS),
            descending=params.descending(),
            scheduled_start_min=params.timestamp("scheduled_start_min"),
            scheduled_start_max=params.timestamp("scheduled_start_max"),
            scheduled_end_min=params.timestamp("scheduled_end_min"),
            scheduled_end_max=params.timestamp("scheduled_end_max"),
            customer_id=params.text("customer_id") or None,
            employee_ids=frozenset(params.arrays["employee_ids"]),
            statuses=frozenset(statuses),
        )
        jobs, envelope = paginate(params, "jobs", world.find_jobs(query))
        envelope["jobs"] = [render_job(world, j, params.arrays["expand"]) for j in jobs]
        return JSONResponse(envelope)

    @router.get("/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> JSONResponse:
        expand = Params(request, ("expand",)).arrays["expand"]
        return JSONResponse(render_job(world, world.visible_job(job_id), expand))

    @router.get("/jobs/{job_id}/line_items")
    async def line_items(job_id: str) -> JSONResponse:
        job = world.visible_job(job_id)
        return JSONResponse({"url": f"/jobs/{job.id}/line_items", "data": [li.to_api() for li in job.line_items]})

    @router.get("/customers")
    async def list_customers(request: Request) -> JSONResponse:
        params = Params(request, ("location_ids", "expand"))
        sort_by = params.choice("sort_by", "created_at", CUSTOMER_SORT_KEYS)
        found = world.find_customers(params.text("q") or None, sort_by, params.descending())
        customers, envelope = paginate(params, "customers", found)
        envelope["customers"] = [render_customer(world, c, params.arrays["expand"]) for c in customers]
        return JSONResponse(envelope)

    @router.get("/customers/{customer_id}")
    async def get_customer(customer_id: str, request: Request) -> JSONResponse:
        expand = Params(request, ("expand",)).arrays["expand"]
        return JSONResponse(render_customer(world, world.get_customer(customer_id), expand))

    @router.post("/customers")
    async def create_customer(request: Request) -> JSONResponse:
        body = await _body(request, empty_ok=False)
        errors = customer_errors(body)
        if not any(isinstance(body.get(k), str) and body[k].strip() for k in REQUIRED_ONE_OF):
            errors["base"] = [f"One of {', '.join(REQUIRED_ONE_OF)} is required"]
        if errors:
            raise HCPError(422, {"errors": errors})
        lead = body.get("lead_source")
        if lead and world.find_lead_source(lead) is None:
            raise HCPError(422, {"error": {"message": "Lead source not found"}})
        body.pop("updated_at", None)  # the clock override is an admin-only feature
        return JSONResponse(render_customer(world, operations.create_customer(world, body)), status_code=201)

    @router.get("/employees")
    async def list_employees(request: Request) -> JSONResponse:
        params = Params(request, ("location_ids",))
        key = EMPLOYEE_SORT_KEYS[params.choice("sort_by", "created_at", EMPLOYEE_SORT_KEYS)]
        found = sort_records(world.employees.values(), key, params.descending())
        employees, envelope = paginate(params, "employees", found)
        envelope["employees"] = [render_employee(world, e) for e in employees]
        return JSONResponse(envelope)

    @router.get("/lead_sources")
    async def list_lead_sources(request: Request) -> JSONResponse:
        params = Params(request)
        q = (params.text("q") or "").lower()
        found = [ls for ls in world.lead_sources if q in ls.name.lower()]
        found.sort(key=lambda ls: (ls.name.lower(), ls.id), reverse=params.descending())
        sources, envelope = paginate(params, "lead_sources", found)
        envelope["lead_sources"] = _named(sources, editable=True)
        return JSONResponse(envelope)

    @router.get("/job_fields/job_types")
    async def list_job_types(request: Request) -> JSONResponse:
        params = Params(request)
        name = (params.text("name") or "").lower()
        types, envelope = paginate(params, "job_types", [t for t in world.job_types if name in t.name.lower()])
        envelope["job_types"] = _named(types)
        return JSONResponse(envelope)

    return router


def _admin_routes(
    world: World,
    faults: FaultQueue,
    log: RequestLog,
    on_reset: Sequence[Callable[[], None]],
    webhooks: WebhookSender,
) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX)

    def state() -> JSON:
        return {**world.summary(), "faults": len(faults.list()), "requests": len(log.list())}

    @router.post("/reset")
    async def reset(request: Request) -> JSONResponse:
        body = await _admin_body(request)
        seed = body.get("seed", world.seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise WorldError(422, "seed must be an integer")
        tie_order = body.get("tie_order", "id")
        if tie_order not in ("id", "random"):
            raise WorldError(422, 'tie_order must be "id" or "random"')
        world.tie_order = tie_order
        world.clock.reset()
        world.reseed(seed)
        faults.clear()
        log.clear()
        webhooks.disable(forget=True)
        for hook in on_reset:
            hook()
        return JSONResponse(state())

    @router.get("/state")
    async def get_state() -> JSONResponse:
        return JSONResponse(state())

    @router.get("/requests")
    async def list_requests(path: str | None = None, method: str | None = None) -> JSONResponse:
        return JSONResponse({"requests": log.list(path, method)})

    @router.delete("/requests")
    async def clear_requests() -> JSONResponse:
        log.clear()
        return JSONResponse({"requests": []})

    @router.get("/clock")
    async def get_clock() -> JSONResponse:
        return JSONResponse({"now": fmt_ts(world.clock.now()), "frozen": world.clock.frozen})

    @router.post("/clock")
    async def set_clock(request: Request) -> JSONResponse:
        body = await _admin_body(request)
        freeze, set_to, advance = body.get("freeze"), body.get("set"), body.get("advance_seconds")
        if freeze is not None and not isinstance(freeze, bool):
            raise WorldError(422, "freeze must be a boolean")
        if advance is not None and (isinstance(advance, bool) or not isinstance(advance, int | float)):
            raise WorldError(422, "advance_seconds must be a number")
        try:
            when = parse_ts(set_to) if isinstance(set_to, str) else None
        except ValueError:
            when = None
        if set_to is not None and when is None:
            raise WorldError(422, "set must be an ISO-8601 timestamp")
        now = world.clock.configure(freeze=freeze, set_to=when, advance_seconds=advance)
        return JSONResponse({"now": fmt_ts(now), "frozen": world.clock.frozen})

    @router.post("/late")
    async def late_commits(request: Request) -> JSONResponse:
        """Late commits (see :mod:`.visibility`): ``share`` of job writes visible ``min_seconds``-``max_seconds``
        after they were stamped; ``{"share": 0}`` turns it off."""
        body = await _admin_body(request)
        values = {k: body.get(k, d) for k, d in (("share", 0.0), ("min_seconds", 5.0), ("max_seconds", 60.0))}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise WorldError(422, f"{key} must be a number")
        seed = body.get("seed", world.seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise WorldError(422, "seed must be an integer")
        with world.lock:
            try:
                world.late.configure(
                    float(values["share"]), float(values["min_seconds"]), float(values["max_seconds"]), seed
                )
            except ValueError as exc:
                raise WorldError(422, str(exc)) from None
            return JSONResponse(world.late.summary(world.clock.now()))

    @router.get("/faults")
    async def list_faults() -> JSONResponse:
        return JSONResponse({"faults": faults.list()})

    @router.post("/faults")
    async def add_fault(request: Request) -> JSONResponse:
        try:
            rule = faults.add(await _admin_body(request))
        except ValueError as exc:
            raise WorldError(422, str(exc)) from None
        return JSONResponse(rule.to_json(), status_code=201)

    @router.delete("/faults")
    async def clear_faults() -> JSONResponse:
        faults.clear()
        return JSONResponse({"faults": []})

    @router.get("/jobs")
    async def all_jobs() -> JSONResponse:
        """Every job as ``GET /jobs/{id}`` renders it, unpaged and never faulted (for test oracles)."""
        with world.lock:
            return JSONResponse({"jobs": [render_job(world, j) for j in world.visible_jobs()]})

    @router.post("/jobs")
    async def book_job(request: Request) -> JSONResponse:
        job = operations.apply(world, "book", None, await _admin_body(request))
        rendered = render_job(world, job)
        webhooks.job_changed("book", rendered)
        return JSONResponse(rendered, status_code=201)

    @router.post("/jobs/{job_id}/{op}")
    async def job_op(job_id: str, op: str, request: Request) -> JSONResponse:
        if op == "book":
            raise StarletteHTTPException(404)
        job = operations.apply(world, op, job_id, await _admin_body(request))
        rendered = render_job(world, job)
        webhooks.job_changed(op, rendered)
        return JSONResponse(rendered)

    @router.post("/bulk_jobs")
    async def bulk_jobs(request: Request) -> JSONResponse:
        return JSONResponse({"created": operations.bulk_jobs(world, await _admin_body(request))}, status_code=201)

    @router.post("/customers")
    async def create_customer(request: Request) -> JSONResponse:
        body = await _admin_body(request)
        errors = customer_errors(body)
        if errors:
            raise WorldError(422, "; ".join(f"{k} {' '.join(v)}" for k, v in errors.items()))
        customer = render_customer(world, operations.create_customer(world, body))
        webhooks.send("customer.created", "customer", customer)
        return JSONResponse(customer, status_code=201)

    @router.post("/webhooks")
    async def set_webhooks(request: Request) -> JSONResponse:
        body = await _admin_body(request)
        return JSONResponse(await asyncio.to_thread(webhooks.configure, body))

    @router.get("/webhooks")
    async def get_webhooks(wait: float = 0.0) -> JSONResponse:
        """``wait``: seconds to wait first for every queued delivery to be attempted to the end."""
        if wait > 0:
            await asyncio.to_thread(webhooks.wait_idle, min(wait, 120.0))
        return JSONResponse(webhooks.describe())

    @router.delete("/webhooks")
    async def delete_webhooks() -> JSONResponse:
        webhooks.disable()
        return JSONResponse(webhooks.describe())

    @router.post("/webhooks/release")
    async def release_webhooks(request: Request) -> JSONResponse:
        body = await _admin_body(request)
        return JSONResponse({"released": webhooks.release(str(body.get("order", "fifo")))})

    return router


def _account_routes(accounts: Accounts) -> APIRouter:
    """More accounts on the one world: each its own API key, named in the request log (a triggerer serving many
    Housecall Pro accounts, each with its own connection)."""
    router = APIRouter(prefix=ADMIN_PREFIX)

    @router.get("/accounts")
    async def list_accounts() -> JSONResponse:
        return JSONResponse({"accounts": sorted(set(accounts.values()))})

    @router.post("/accounts")
    async def add_account(request: Request) -> JSONResponse:
        body = await _admin_body(request)
        name, key = body.get("name"), body.get("api_key")
        if not isinstance(name, str) or not name:
            raise WorldError(422, "name must be a non-empty string")
        if not isinstance(key, str) or not key.strip():
            raise WorldError(422, "api_key must be a non-empty string")
        if accounts.get(key, name) != name:
            raise WorldError(409, "api_key belongs to another account")
        accounts[key] = name
        return JSONResponse({"name": name}, status_code=201)

    return router


async def _admin_body(request: Request) -> JSON:
    try:
        return await _body(request, empty_ok=True)
    except HCPError as exc:
        raise WorldError(400, exc.body["error"]["message"]) from None


def create_app(
    api_key: str = "sandbox-key",
    seed: int = 1,
    now: datetime | None = None,
    *,
    routers: Sequence[APIRouter] = (),
    on_reset: Sequence[Callable[[], None]] = (),
) -> FastAPI:
    """A fresh sandbox. ``now`` freezes the clock at that instant (default: real, running UTC time).

    ``routers`` are mounted beside the API (behind the same middleware: paths under ``/_sandbox`` need no API
    key, everything else does); ``on_reset`` run on ``POST /_sandbox/reset``. The demo and the tests add their
    local message sinks this way (``example_dags/hcp_messaging/sinks.py``); the provider ships none.
    """
    world = World(seed, Clock(now))
    faults, log = FaultQueue(), RequestLog()
    accounts = Accounts({api_key: DEFAULT_ACCOUNT})
    app = FastAPI(
        title="Housecall Pro sandbox", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False
    )
    webhooks = WebhookSender(lambda: str(world.company["id"]), world.clock.now)
    app.state.world, app.state.faults, app.state.request_log = world, faults, log
    app.state.webhooks = webhooks
    app.include_router(_hcp_routes(world))
    app.include_router(_admin_routes(world, faults, log, on_reset, webhooks))
    app.include_router(_account_routes(accounts))
    for router in routers:
        app.include_router(router)
    app.add_middleware(SandboxMiddleware, world=world, faults=faults, log=log, accounts=accounts)
    install_log_filter()

    @app.exception_handler(HCPError)
    async def hcp_error(request: Request, exc: HCPError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(WorldError)
    async def world_error(request: Request, exc: WorldError) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.message}}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):
            return JSONResponse({"error": {"message": "Not found"}}, status_code=404)
        return JSONResponse({"error": {"message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = {str(err.get("loc", ["", "request"])[-1]): ["is invalid"] for err in exc.errors()}
        return JSONResponse({"errors": fields or {"base": ["is invalid"]}}, status_code=422)

    return app
