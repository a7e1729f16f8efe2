"""CreateCustomerOperator: create a Housecall Pro customer from (templated) task inputs.

The product's "Create new customer" action as an Airflow operator. The input is validated with the same
rules as :class:`~airflow_provider_housecallpro.api.models.CustomerCreate` after templates are rendered and
before any HTTP request; the new customer's ID is the task's return value (XCom ``return_value``) and the
full record is pushed under the XCom key ``customer``.

It runs on the worker and never defers: ``POST /customers`` is a side effect that a triggerer restart
must not replay. A POST is never repeated blindly: after an ambiguous failure (the connection dropped
after the request was sent, a timeout, a 5xx) the operator first checks whether the customer was created,
and a task retry always looks the customer up before posting again.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_housecallpro.api import matching
from airflow_provider_housecallpro.api.errors import (
    HousecallProDecodeError,
    HousecallProError,
    HousecallProInputError,
    HousecallProServerError,
    HousecallProTransportError,
    HousecallProValidationError,
)
from airflow_provider_housecallpro.api.models import Customer, CustomerCreate
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

IfExists = Literal["return_existing", "create", "fail"]
IF_EXISTS: tuple[str, ...] = ("return_existing", "create", "fail")
DRY_RUN_PREFIX = "cus_dryrun_"
XCOM_CUSTOMER_KEY = "customer"
_MIN = datetime.min.replace(tzinfo=UTC)
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0", ""})


class CustomerInputError(HousecallProInputError, AirflowFailException):
    """The customer input was rejected; no customer was created. Fails the task without retries.

    Raised for invalid fields (the ``CustomerCreate`` rules), a lead source the account does not have,
    and a 400/422 answer of Housecall Pro to the POST. ``errors`` maps each field to its rule.
    """

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        self.errors = dict(errors or {})
        Exception.__init__(self, message)

    @classmethod
    def from_errors(cls, errors: Mapping[str, str], outcome: str) -> CustomerInputError:
        lines = "; ".join(f"{field}: {rule}" for field, rule in errors.items())
        return cls(f"Invalid customer — {lines}. {outcome}", errors)


class CustomerExistsError(HousecallProError, AirflowFailException):
    """``if_exists="fail"`` and a customer with the same email or mobile number exists. Not retried."""

    def __init__(self, message: str, customer_id: str | None = None) -> None:
        self.customer_id = customer_id
        super().__init__(message)


class AmbiguousCreateError(HousecallProError, AirflowFailException):
    """The POST may have created the customer and there is no email or mobile number to check. Not retried."""


class CreateCustomerOperator(BaseOperator):
    """Create a customer in Housecall Pro and return its ID.

    Every argument is templated, so values can come from ``dag_run.conf`` (``"{{ dag_run.conf['email'] }}"``),
    params or upstream tasks (XComArgs). Optional fields that render to an empty string count as not given.

    :param housecallpro_conn_id: the Housecall Pro connection (default ``housecallpro_default``).
    :param first_name: required, not blank.
    :param last_name: required, not blank.
    :param email_address: the customer's email (the API's ``email``), well-formed. Named so because
        ``email`` is BaseOperator's failure-alert address (and would be filled from ``default_args``).
    :param company: company name (B2B customers).
    :param mobile_number: exactly 10 digits, numbers only (``5125551234``).
    :param home_number: same format as ``mobile_number``.
    :param work_number: same format as ``mobile_number``.
    :param notes: free-text notes on the customer.
    :param tags: list of tags (a string renders as a JSON/Python list or a comma-separated list).
    :param lead_source: name of one of the account's lead sources (``GET /lead_sources``), case-insensitive.
    :param notifications_enabled: whether Housecall Pro may notify the customer.
    :param address: one address: a dict with ``street``, ``street_line_2``, ``city``, ``state``, ``zip``,
        ``country``.
    :param addresses: a list of such dicts (added after ``address``).
    :param if_exists: what to do when a customer with the same email (or else mobile number) already exists:
        ``"return_existing"`` (default: return its ID and create nothing — re-running a DAG is idempotent),
        ``"create"`` (create another customer anyway) or ``"fail"`` (fail the task naming the existing ID).
    :param dry_run: validate, log the exact request body and return a fake ID (``cus_dryrun_…``) without
        making any HTTP request. Also enabled by the connection extra ``"dry_run": true``.
    """

    template_fields: Sequence[str] = (
        "housecallpro_conn_id",
        "first_name",
        "last_name",
        "email_address",
        "company",
        "mobile_number",
        "home_number",
        "work_number",
        "notes",
        "tags",
        "lead_source",
        "notifications_enabled",
        "address",
        "addresses",
        "if_exists",
        "dry_run_enabled",  # ``dry_run`` itself is a BaseOperator method
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "address": "json",
        "addresses": "json",
        "tags": "json",
        "notes": "md",
    }
    ui_color = "#dbeafe"
    ui_fgcolor = "#0b3d91"

    def __init__(
        self,
        *,
        first_name: str,
        last_name: str,
        email_address: str | None = None,
        company: str | None = None,
        mobile_number: str | None = None,
        home_number: str | None = None,
        work_number: str | None = None,
        notes: str | None = None,
        tags: list[str] | str | None = None,
        lead_source: str | None = None,
        notifications_enabled: bool | str | None = None,
        address: Mapping[str, Any] | str | None = None,
        addresses: Sequence[Mapping[str, Any]] | str | None = None,
        if_exists: IfExists | str = "return_existing",
        dry_run: bool | str = False,
        housecallpro_conn_id: str = HousecallProHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.housecallpro_conn_id = housecallpro_conn_id
        self.first_name = first_name
        self.last_name = last_name
        self.email_address = email_address
        self.company = company
        self.mobile_number = mobile_number
        self.home_number = home_number
        self.work_number = work_number
        self.notes = notes
        self.tags = tags
        self.lead_source = lead_source
        self.notifications_enabled = notifications_enabled
        self.address = address
        self.addresses = addresses
        self.if_exists = if_exists
        self.dry_run_enabled = dry_run
        if isinstance(if_exists, str) and "{{" not in if_exists:
            _if_exists(if_exists)  # fail at DAG parse time for a literal typo

    # -- execute ----------------------------------------------------------------------------------
    def execute(self, context: Context) -> str:
        if_exists = _if_exists(self.if_exists)
        payload = self.build_payload()  # raises CustomerInputError before any HTTP request
        try_number = _try_number(context)
        if self._is_dry_run():
            customer = self._dry_run(payload)
            self._push(context, customer)
            return str(customer["id"])

        hook = HousecallProHook(self.housecallpro_conn_id)
        try:
            payload, sources = self._check_lead_source(hook, payload)
            found = self._lookup(hook, payload, if_exists, try_number)
            if found is not None:
                record = found.model_dump(mode="json")
            else:
                created = self._create(hook, payload, if_exists, sources)
                record = created.model_dump(mode="json")
        finally:
            hook.close()
        self._push(context, record)
        return str(record["id"])

    def build_payload(self) -> CustomerCreate:
        """The validated ``POST /customers`` body from the (rendered) arguments."""
        problems: dict[str, str] = {}
        fields: dict[str, Any] = {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email_address,
            "company": self.company,
            "mobile_number": self.mobile_number,
            "home_number": self.home_number,
            "work_number": self.work_number,
            "notes": self.notes,
            "lead_source": self.lead_source,
        }
        fields["tags"] = _coerce(_tags, self.tags, "tags", problems)
        fields["notifications_enabled"] = _coerce(_flag, self.notifications_enabled, "notifications_enabled", problems)
        address = _coerce(_mapping, self.address, "address", problems)
        addresses = _coerce(_mappings, self.addresses, "addresses", problems)
        if address is not None or addresses is not None:
            fields["addresses"] = ([address] if address is not None else []) + list(addresses or [])
        # Blank optional strings ("not given", e.g. a missing conf key) are dropped by CustomerCreate itself.
        fields = {k: v for k, v in fields.items() if v is not None}
        payload: CustomerCreate | None = None
        try:
            payload = CustomerCreate.build(**fields)
        except HousecallProInputError as exc:
            problems.update({"email_address" if k == "email" else k: v for k, v in exc.errors.items()})
        if problems or payload is None:
            raise CustomerInputError.from_errors(problems, "No request was sent to Housecall Pro.")
        return payload

    # -- steps ------------------------------------------------------------------------------------
    def _is_dry_run(self) -> bool:
        try:
            if _flag(self.dry_run_enabled):
                return True
        except ValueError as exc:
            raise CustomerInputError.from_errors({"dry_run": str(exc)}, "No request was sent.") from None
        extras = HousecallProHook.get_connection(self.housecallpro_conn_id).extra_dejson
        try:
            return bool(_flag(extras.get("dry_run")))
        except ValueError as exc:
            raise CustomerInputError(
                f"Extra 'dry_run' of connection {self.housecallpro_conn_id!r} {exc}. No request was sent."
            ) from None

    def _dry_run(self, payload: CustomerCreate) -> dict[str, Any]:
        body = payload.to_body()
        text = json.dumps(body, sort_keys=True, ensure_ascii=False)
        fake_id = DRY_RUN_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]
        self.log.info("DRY RUN — no request is made. Would send POST /customers with body: %s", text)
        self.log.info(
            "DRY RUN — skipped the duplicate lookup and the lead source check; returning fake customer id %s",
            fake_id,
        )
        return {"id": fake_id, **body, "dry_run": True}

    def _check_lead_source(
        self, hook: HousecallProHook, payload: CustomerCreate
    ) -> tuple[CustomerCreate, list[str] | None]:
        """Fail on a lead source the account doesn't have; send the account's own spelling of it."""
        wanted = payload.lead_source
        if wanted is None:
            return payload, None
        names = [source.name for source in hook.list_lead_sources()]
        canonical = next((n for n in names if n.strip().casefold() == wanted.casefold()), None)
        if canonical is None:
            raise _unknown_lead_source(wanted, names, "No customer was created.")
        if canonical != wanted:
            self.log.info("Lead source %r matched the account's %r", wanted, canonical)
            payload = payload.model_copy(update={"lead_source": canonical})
        return payload, names

    def _lookup(
        self, hook: HousecallProHook, payload: CustomerCreate, if_exists: str, try_number: int
    ) -> Customer | None:
        """An existing customer to return instead of creating one, or None to go ahead and create."""
        retry = try_number > 1
        if not retry:
            if if_exists == "create":
                return None
            if not _lookup_keys(payload):
                self.log.info("No email or mobile number to look for an existing customer by")
                return None
            existing = hook.find_customer(email=payload.email, mobile_number=payload.mobile_number)
            if existing is None:
                self.log.info("No customer with the same email or mobile number exists")
                return None
            return self._existing(existing, if_exists)

        if not _lookup_keys(payload):
            self.log.warning(
                "Retry (try %d): cannot check whether an earlier try already created this customer — it has "
                "no email or mobile number to look it up by. Creating it; if an earlier try was interrupted "
                "in the middle of POST /customers, check Housecall Pro for a duplicate %s %s.",
                try_number,
                payload.first_name,
                payload.last_name,
            )
            return None
        self.log.info(
            "Retry (try %d): looking the customer up before posting again, so an earlier try whose response "
            "was lost does not lead to a duplicate (if_exists=%r)",
            try_number,
            if_exists,
        )
        groups = _exact_matches(hook, payload)
        ours = _newest(c for group in groups for c in group if same_customer(c, payload))
        existing = matching.canonical(groups)
        if if_exists == "return_existing" and existing is not None and (ours is None or ours.id != existing.id):
            return self._existing(existing, if_exists)
        if ours is not None:
            self.log.info(
                "Customer %s matches every given field: most likely created by an earlier try of this task; "
                "returning it instead of creating another",
                ours.id,
            )
            return ours
        if if_exists == "fail" and existing is not None:
            return self._existing(existing, if_exists)
        self.log.info("No customer created by an earlier try was found")
        return None

    def _existing(self, existing: Customer, if_exists: str) -> Customer:
        if if_exists == "fail":
            raise CustomerExistsError(
                f"A Housecall Pro customer with the same email or mobile number already exists: {existing.id} "
                "(if_exists='fail'). No customer was created.",
                existing.id,
            )
        self.log.info(
            "Returned existing customer %s (same email or mobile number; if_exists='return_existing'); "
            "nothing was created",
            existing.id,
        )
        return existing

    def _create(
        self, hook: HousecallProHook, payload: CustomerCreate, if_exists: str, sources: list[str] | None
    ) -> Customer:
        try:
            customer = hook.create_customer(payload)
        except HousecallProValidationError as exc:
            raise self._rejected(hook, payload, exc, sources) from exc
        except (HousecallProTransportError, HousecallProServerError, HousecallProDecodeError) as exc:
            if isinstance(exc, HousecallProTransportError) and not exc.maybe_delivered:
                raise  # never reached Housecall Pro: a retry may simply post again
            found = self._reconcile(hook, payload, if_exists, exc)
            if found is None:
                raise
            return found
        self.log.info("Created Housecall Pro customer %s", customer.id)
        return customer

    def _rejected(
        self,
        hook: HousecallProHook,
        payload: CustomerCreate,
        exc: HousecallProValidationError,
        sources: list[str] | None,
    ) -> CustomerInputError:
        """Housecall Pro answered 400/422 to the POST: the same input would be rejected again."""
        outcome = f"Housecall Pro rejected it ({exc.status}); no customer was created."
        message = (exc.api_message or "").casefold()
        if payload.lead_source is not None and "lead source" in message:
            if sources is None:
                try:
                    sources = [s.name for s in hook.list_lead_sources()]
                except HousecallProError:
                    sources = []
            return _unknown_lead_source(payload.lead_source, sources, outcome)
        errors = {str(k): str(v) for k, v in exc.field_errors.items()} or {"input": exc.api_message or str(exc)}
        return CustomerInputError.from_errors(errors, outcome)

    def _reconcile(
        self, hook: HousecallProHook, payload: CustomerCreate, if_exists: str, exc: HousecallProError
    ) -> Customer | None:
        """After an ambiguous POST failure: the customer if it was created after all, else None."""
        if not _lookup_keys(payload):
            raise AmbiguousCreateError(
                f"{exc}. The customer may have been created, and with no email or mobile number there is no "
                "way to look it up, so the task fails without retrying (a retry could create a duplicate). "
                f"Check Housecall Pro for {payload.first_name} {payload.last_name}; clear the task to create "
                "it anyway."
            ) from exc
        self.log.warning("%s — checking whether the customer was created anyway", exc)
        try:
            groups = _exact_matches(hook, payload)
        except HousecallProError as lookup_error:
            self.log.warning(
                "Could not check whether the customer was created (%s); a retry of this task will look it up "
                "again before posting",
                lookup_error,
            )
            return None
        found = _newest(c for group in groups for c in group if same_customer(c, payload))
        if found is None and if_exists == "return_existing":
            found = matching.canonical(groups)
        if found is None:
            self.log.warning("The customer was not found; a retry of this task will look it up again before posting")
            return None
        self.log.info("The POST did create customer %s; returning it (no second POST)", found.id)
        return found

    def _push(self, context: Context, record: Mapping[str, Any]) -> None:
        context["ti"].xcom_push(key=XCOM_CUSTOMER_KEY, value=dict(record))


# -- helpers (pure) -------------------------------------------------------------------------------
def _if_exists(value: Any) -> str:
    text = str(value).strip()
    if text not in IF_EXISTS:
        raise CustomerInputError.from_errors(
            {"if_exists": f"must be one of {', '.join(map(repr, IF_EXISTS))}; got {value!r}"},
            "No request was sent to Housecall Pro.",
        )
    return text


def _try_number(context: Context) -> int:
    ti = context.get("ti")
    try:
        return int(getattr(ti, "try_number", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _coerce(convert: Any, value: Any, field: str, problems: dict[str, str]) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        problems[field] = str(exc)
        return None


def _literal(text: str) -> Any:
    """A JSON or Python literal, as a non-native template renders a list or dict."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"is not a valid JSON value; got {text!r}") from None


def _flag(value: Any) -> bool | None:
    """A boolean, or a rendered one ("True", "false", "yes", "0"); blank = not given."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if text == "":
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"must be true or false; got {value!r}")


def _tags(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            value = _literal(text)
        else:
            return [t.strip() for t in text.split(",") if t.strip()]
    if isinstance(value, list | tuple) and all(isinstance(t, str) for t in value):
        return [t.strip() for t in value if t.strip()]
    raise ValueError(f"must be a list of strings; got {value!r}")


def _mapping(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        if not value.strip():
            return None
        value = _literal(value.strip())
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    raise ValueError(f"must be a dict with street, street_line_2, city, state, zip, country; got {value!r}")


def _mappings(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, str):
        if not value.strip():
            return None
        value = _literal(value.strip())
    if value is None:
        return None
    if isinstance(value, list | tuple) and all(isinstance(a, Mapping) for a in value):
        return [dict(a) for a in value]
    raise ValueError(f"must be a list of address dicts; got {value!r}")


def _unknown_lead_source(wanted: str, names: Iterable[str], outcome: str) -> CustomerInputError:
    valid = ", ".join(sorted(names, key=str.casefold)) or "(the account has none)"
    rule = f"must be one of this account's lead sources: {valid}; got {wanted!r}"
    return CustomerInputError.from_errors({"lead_source": rule}, outcome)


def _lookup_keys(payload: CustomerCreate) -> list[tuple[str, str]]:
    return matching.lookup_terms(payload.email, payload.mobile_number)


def _exact_matches(hook: HousecallProHook, payload: CustomerCreate) -> list[list[Customer]]:
    """Every exact match, by email then by mobile number (one group per key, in that order)."""
    return hook.find_customer_matches(email=payload.email, mobile_number=payload.mobile_number)


def _newest(customers: Iterable[Customer]) -> Customer | None:
    return max(customers, key=lambda c: (c.created_at or _MIN, c.id), default=None)


def _text(value: str) -> str:
    return " ".join(value.split()).casefold()


def same_customer(customer: Customer, payload: CustomerCreate) -> bool:
    """Whether ``customer`` has every identifying field of ``payload`` (names, email, phones, company)."""
    checks: list[tuple[str | None, str | None, Any]] = [
        (customer.first_name, payload.first_name, _text),
        (customer.last_name, payload.last_name, _text),
        (customer.company, payload.company, _text),
        (customer.email, payload.email, matching.normalize_email),
        (customer.mobile_number, payload.mobile_number, matching.normalize_phone),
        (customer.home_number, payload.home_number, matching.normalize_phone),
        (customer.work_number, payload.work_number, matching.normalize_phone),
    ]
    for have, want, normalize in checks:
        if want is not None and (have is None or normalize(have) != normalize(want)):
            return False
    return True


__all__ = [
    "IF_EXISTS",
    "AmbiguousCreateError",
    "CreateCustomerOperator",
    "CustomerExistsError",
    "CustomerInputError",
    "same_customer",
]
