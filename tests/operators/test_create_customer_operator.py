"""CreateCustomerOperator against the live sandbox: dag.test() runs (real task instances, templates, XCom, retries)
and direct ``execute()`` calls where the exact exception matters."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
from airflow import __version__ as airflow_version
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_housecallpro.api.errors import HousecallProInputError
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.operators.customers import (
    CreateCustomerOperator,
    CustomerExistsError,
    CustomerInputError,
)
from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer
from tests.conftest import API_KEY, FAST, TEST_DAGS, conn_json, run_dag, xcom

AIRFLOW_3_0 = airflow_version.startswith("3.0.")
LEAD_SOURCES = "Facebook, Google, Referral, Website, Yelp"  # the sandbox account's, sorted
FULL = {
    "first_name": "Maria",
    "last_name": "Gonzalez",
    "email": "maria.gonzalez@webform.test",
    "company": "Gonzalez Dental",
    "mobile_number": "3035550101",
    "home_number": "3035550102",
    "work_number": "3035550103",
    "notes": "Prefers morning appointments",
    "tags": ["web-form", "vip"],
    "lead_source": "Website",
    "notifications_enabled": True,
    "address": {
        "street": "1200 Larimer St",
        "street_line_2": "Suite 4",
        "city": "Denver",
        "state": "CO",
        "zip": "80204",
        "country": "US",
    },
}
PERSON = {"first_name": "Dev", "last_name": "Patel", "email": "dev.patel@webform.test", "mobile_number": "3035550111"}


@pytest.fixture(scope="module")
def dags() -> ModuleType:
    spec = importlib.util.spec_from_file_location("create_customer_dags", TEST_DAGS / "create_customer_dags.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fast_conn(sandbox: SandboxServer, admin: SandboxAdmin, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection with quick client retries (one retry), for runs with injected faults."""
    monkeypatch.setenv("AIRFLOW_CONN_HCP_FAST", conn_json(sandbox.url, **FAST, max_retries=1))
    return "hcp_fast"


def run(dags: ModuleType, **conf: Any) -> Any:
    return run_dag(dags.dag, run_conf=conf)


def run_with_retry(dags: ModuleType, **conf: Any) -> Any:
    """dag.test() a run whose first try fails with a retryable error; the task's second try runs too.

    Airflow >= 3.1 retries inside dag.test() (``retries=1, retry_delay=0`` on the DAG). Airflow 3.0's
    in-process supervisor overwrites ``up_for_retry`` with ``failed`` and dag.test() stops, so there the
    same task instance gets its second try the way dag.test() runs any try: try_number + 1, scheduled,
    then ``_run_task`` (a real task instance with ``try_number == 2``, templates rendered again).
    """
    dag_run = run(dags, **conf)
    if not (AIRFLOW_3_0 and task(dag_run).state == "failed" and task(dag_run).try_number == 1):
        return dag_run
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.definitions.dag import _run_task  # type: ignore[attr-defined]
    from airflow.utils.session import create_session

    with create_session() as session:  # what the scheduler does for a retry
        ti = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).one()
        ti.prepare_db_for_next_try(session)
        ti.try_number += 1
        ti.state = "scheduled"
        session.query(DagRun).filter_by(id=dag_run.id).update({"state": "running"})
    ti = task(dag_run)
    ti.task = dags.dag.task_dict[ti.task_id]
    _run_task(ti=ti)
    with create_session() as session:
        fresh = session.query(DagRun).filter_by(id=dag_run.id).one()
        fresh.dag = dags.dag
        fresh.update_state(session=session)
        session.expunge(fresh)
    return fresh


def task(dag_run: Any, task_id: str = "create_customer") -> Any:
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def posts(admin: SandboxAdmin) -> list[dict[str, Any]]:
    return admin.requests(method="POST", path="/customers")


def customers_with(hook: HousecallProHook, email: str) -> list[str]:
    return [c.id for c in hook.iter_customers(q=email) if c.email == email]


class FakeTI:
    """Stands in for Airflow's task instance when ``execute()`` is called directly."""

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def execute(try_number: int = 1, **kwargs: Any) -> tuple[str, FakeTI]:
    ti = FakeTI(try_number)
    # The API field "email" is the operator's `email_address` (`email` is BaseOperator's alert address).
    kwargs = {"email_address" if key == "email" else key: value for key, value in kwargs.items()}
    operator = CreateCustomerOperator(task_id="create_customer", **kwargs)
    return operator.execute({"ti": ti}), ti  # type: ignore[arg-type]


# -- creating -------------------------------------------------------------------------------------
def test_creates_customer_with_every_field_from_templated_conf(
    airflow_db: None, dags: ModuleType, connection: str, hook: HousecallProHook, admin: SandboxAdmin
) -> None:
    dag_run = run(dags, **FULL)
    assert dag_run.state == "success"
    customer_id = xcom(dag_run, "create_customer")
    assert customer_id.startswith("cus_")

    fetched = hook.get_customer(customer_id)  # GET /customers/{id}
    for field in ("first_name", "last_name", "email", "company", "mobile_number", "home_number", "work_number"):
        assert getattr(fetched, field) == FULL[field], field
    assert fetched.tags == FULL["tags"]
    assert fetched.lead_source == FULL["lead_source"]
    assert fetched.notifications_enabled is True
    notes = fetched.notes  # the API has returned notes as a string and as a list of notes
    assert notes == FULL["notes"] or [n.content for n in notes or [] if not isinstance(n, str)] == [FULL["notes"]]
    assert fetched.addresses and len(fetched.addresses) == 1
    assert fetched.addresses[0].model_dump(include=set(FULL["address"])) == FULL["address"]

    assert xcom(dag_run, "create_customer", "customer") == fetched.model_dump(mode="json")
    [post] = posts(admin)
    assert post["json"] == {**{k: v for k, v in FULL.items() if k != "address"}, "addresses": [FULL["address"]]}


def test_optional_fields_left_empty_in_conf_are_not_sent(
    airflow_db: None, dags: ModuleType, connection: str, admin: SandboxAdmin
) -> None:
    dag_run = run(dags, first_name="Solo", last_name="Name")
    assert dag_run.state == "success"
    assert [p["json"] for p in posts(admin)] == [{"first_name": "Solo", "last_name": "Name"}]


def test_xcomargs_from_an_upstream_task_and_the_id_downstream(
    airflow_db: None, dags: ModuleType, connection: str, hook: HousecallProHook, admin: SandboxAdmin
) -> None:
    form = {**PERSON, "tags": ["form"], "address": {"zip": "80202"}}
    dag_run = run_dag(dags.form_dag, run_conf=form)
    assert dag_run.state == "success"
    customer_id = xcom(dag_run, "create_customer")
    assert xcom(dag_run, "welcome") == f"welcome {customer_id}"
    fetched = hook.get_customer(customer_id)
    assert (fetched.email, fetched.mobile_number, fetched.tags) == (PERSON["email"], PERSON["mobile_number"], ["form"])
    assert fetched.addresses and fetched.addresses[0].zip == "80202"


# -- bad input ------------------------------------------------------------------------------------
BAD_INPUTS = [
    pytest.param({"first_name": ""}, "first_name: is required and must not be blank", id="blank-first-name"),
    pytest.param({"last_name": "   "}, "last_name: is required and must not be blank", id="blank-last-name"),
    pytest.param({"mobile_number": "512555123"}, "mobile_number: must be exactly 10 digits", id="9-digits"),
    pytest.param({"mobile_number": "15125551234"}, "mobile_number: must be exactly 10 digits", id="11-digits"),
    pytest.param({"home_number": "512-555-1234"}, "home_number: must be exactly 10 digits", id="dashes"),
    pytest.param({"work_number": "512555ABCD"}, "work_number: must be exactly 10 digits", id="letters"),
    pytest.param({"email": "maria@"}, "email_address: must be a valid email address", id="bad-email"),
    pytest.param({"address": {"zipcode": "1"}}, "addresses.0.zipcode: is not a known field", id="address-typo"),
    pytest.param({"notifications_enabled": "maybe"}, "notifications_enabled: must be true or false", id="flag"),
    pytest.param(
        {"lead_source": "TikTok"},
        f"lead_source: must be one of this account's lead sources: {LEAD_SOURCES}; got 'TikTok'",
        id="unknown-lead-source",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS)
def test_bad_input_fails_naming_field_and_rule_without_posting(
    connection: str, admin: SandboxAdmin, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(HousecallProInputError) as info:
        execute(**{**PERSON, **change})
    assert message in str(info.value)
    assert isinstance(info.value, AirflowFailException)  # an input error is not retried
    assert posts(admin) == []
    if "lead_source" not in change:
        assert admin.requests() == []  # rejected before any HTTP request


def test_bad_input_from_conf_fails_the_task_without_retry(
    airflow_db: None, dags: ModuleType, connection: str, admin: SandboxAdmin, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_run = run(dags, first_name="Ann", last_name="Lee", mobile_number="512-555-0000")
    ti = task(dag_run)
    assert (dag_run.state, ti.state, ti.try_number) == ("failed", "failed", 1)  # retries=1, but not retried
    output = "".join(capfd.readouterr())
    assert "CustomerInputError" in output and "up_for_retry" not in output
    assert admin.requests() == []


def test_lead_source_is_case_insensitive_and_sent_as_the_accounts_name(connection: str, admin: SandboxAdmin) -> None:
    execute(**PERSON, lead_source="google")
    assert [p["json"]["lead_source"] for p in posts(admin)] == ["Google"]


def test_api_lead_source_not_found_is_reported_like_an_unknown_one(connection: str, admin: SandboxAdmin) -> None:
    # The account's list says "Google" exists, but the POST says otherwise (e.g. deleted in between).
    body = json.dumps({"error": {"message": "Lead source not found"}})
    admin.fault("status", status=422, body=body, method="POST", path="/customers")
    with pytest.raises(CustomerInputError) as info:
        execute(**PERSON, lead_source="Google")
    assert f"lead_source: must be one of this account's lead sources: {LEAD_SOURCES}; got 'Google'" in str(info.value)
    assert "Housecall Pro rejected it (422)" in str(info.value)
    assert len(posts(admin)) == 1


def test_unknown_if_exists_is_rejected_when_the_dag_is_parsed() -> None:
    with pytest.raises(CustomerInputError, match="if_exists: must be one of 'return_existing', 'create', 'fail'"):
        CreateCustomerOperator(task_id="t", first_name="A", last_name="B", if_exists="upsert")


# -- duplicates -----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["email", "mobile_number"])
def test_return_existing_returns_the_existing_id_without_posting(
    airflow_db: None, dags: ModuleType, connection: str, hook: HousecallProHook, admin: SandboxAdmin, key: str
) -> None:
    existing = hook.create_customer({"first_name": "Old", "last_name": "Record", key: PERSON[key]})
    admin.clear_requests()
    dag_run = run(dags, first_name="New", last_name="Name", **{key: PERSON[key]})  # default if_exists
    assert dag_run.state == "success"
    assert xcom(dag_run, "create_customer") == existing.id
    assert xcom(dag_run, "create_customer", "customer")["id"] == existing.id
    assert posts(admin) == []


def test_fail_raises_naming_the_existing_id(connection: str, hook: HousecallProHook, admin: SandboxAdmin) -> None:
    existing = hook.create_customer(PERSON)
    admin.clear_requests()
    with pytest.raises(CustomerExistsError, match=f"already exists: {existing.id}") as info:
        execute(**PERSON, if_exists="fail")
    assert info.value.customer_id == existing.id
    assert isinstance(info.value, AirflowFailException)
    assert posts(admin) == []


def test_create_makes_a_second_customer_on_a_first_try(
    airflow_db: None, dags: ModuleType, connection: str, hook: HousecallProHook, admin: SandboxAdmin
) -> None:
    existing = hook.create_customer(PERSON)
    admin.clear_requests()
    dag_run = run(dags, **PERSON, if_exists="create")
    created = xcom(dag_run, "create_customer")
    assert dag_run.state == "success" and created != existing.id
    assert len(posts(admin)) == 1
    assert admin.requests(method="GET", path="/customers") == []  # no lookup on a first try
    assert sorted(customers_with(hook, PERSON["email"])) == sorted([existing.id, created])


# -- ambiguous failures and retries ---------------------------------------------------------------
@pytest.mark.parametrize("if_exists", ["create", "return_existing", "fail"])
def test_post_committed_then_connection_dropped_is_detected_within_the_try(
    airflow_db: None,
    dags: ModuleType,
    fast_conn: str,
    hook: HousecallProHook,
    admin: SandboxAdmin,
    if_exists: str,
) -> None:
    admin.fault("drop", when="after", method="POST", path="/customers")
    dag_run = run(dags, **PERSON, if_exists=if_exists, conn_id=fast_conn)
    assert (dag_run.state, task(dag_run).try_number) == ("success", 1)
    assert customers_with(hook, PERSON["email"]) == [xcom(dag_run, "create_customer")]
    assert len(posts(admin)) == 1


def test_post_committed_then_read_timeout_leaves_exactly_one_customer(
    airflow_db: None,
    dags: ModuleType,
    sandbox: SandboxServer,
    hook: HousecallProHook,
    admin: SandboxAdmin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sandbox creates the customer, then answers only after the client's read timeout (2 s) has passed. (Not
    # shorter: the check that follows must get its answer within that timeout, also on a loaded machine.)
    monkeypatch.setenv("AIRFLOW_CONN_HCP_IMPATIENT", conn_json(sandbox.url, **FAST, max_retries=1))
    admin.fault("delay", seconds=6.0, when="after", method="POST", path="/customers")
    dag_run = run(dags, **PERSON, if_exists="create", conn_id="hcp_impatient")
    assert (dag_run.state, task(dag_run).try_number) == ("success", 1)
    assert customers_with(hook, PERSON["email"]) == [xcom(dag_run, "create_customer")]
    assert len(posts(admin)) == 1  # the timed-out POST was not repeated


@pytest.mark.parametrize("if_exists", ["create", "return_existing", "fail"])
def test_task_retry_after_post_committed_failure_leaves_exactly_one_customer(
    airflow_db: None,
    dags: ModuleType,
    fast_conn: str,
    hook: HousecallProHook,
    admin: SandboxAdmin,
    if_exists: str,
) -> None:
    # Try 1: the POST creates the customer but the connection drops before the answer, and the check
    # that follows fails too (GET /customers dropped, client retry included) -> the task fails and retries.
    admin.fault("drop", when="after", method="POST", path="/customers")
    lookups_before_post = 0 if if_exists == "create" else 2  # by email, then by mobile number
    admin.fault("drop", method="GET", path="/customers", times=2, after=lookups_before_post)
    dag_run = run_with_retry(dags, **PERSON, if_exists=if_exists, conn_id=fast_conn)
    ti = task(dag_run)
    assert (dag_run.state, ti.state, ti.try_number) == ("success", "success", 2)  # a real second try
    customer_id = xcom(dag_run, "create_customer")
    assert customers_with(hook, PERSON["email"]) == [customer_id]
    assert len(posts(admin)) == 1  # try 2 found it and did not post again
    assert xcom(dag_run, "create_customer", "customer")["id"] == customer_id


def test_task_retry_posts_again_when_the_first_post_did_not_land(
    airflow_db: None,
    dags: ModuleType,
    fast_conn: str,
    hook: HousecallProHook,
    admin: SandboxAdmin,
    capfd: pytest.CaptureFixture[str],
) -> None:
    admin.fault("status", status=500, method="POST", path="/customers")  # answered 500, nothing stored
    dag_run = run_with_retry(dags, **PERSON, if_exists="create", conn_id=fast_conn)
    assert (dag_run.state, task(dag_run).try_number) == ("success", 2)
    assert "up_for_retry" in "".join(capfd.readouterr())  # what the no-retry tests check is absent
    assert [p["status"] for p in posts(admin)] == [500, 201]
    # both tries looked before (re)posting: try 1 after the 500, try 2 because it is a retry
    assert len(admin.requests(method="GET", path="/customers")) == 4  # email + mobile, twice
    assert customers_with(hook, PERSON["email"]) == [xcom(dag_run, "create_customer")]


def test_ambiguous_failure_without_email_or_mobile_fails_without_retry(
    airflow_db: None,
    dags: ModuleType,
    fast_conn: str,
    hook: HousecallProHook,
    admin: SandboxAdmin,
    capfd: pytest.CaptureFixture[str],
) -> None:
    admin.fault("drop", when="after", method="POST", path="/customers")
    dag_run = run(dags, first_name="Home", last_name="Only", home_number="3035550199", conn_id=fast_conn)
    ti = task(dag_run)
    assert (dag_run.state, ti.state, ti.try_number) == ("failed", "failed", 1)  # a retry could duplicate it
    output = "".join(capfd.readouterr())
    assert "AmbiguousCreateError" in output and "up_for_retry" not in output
    assert len(posts(admin)) == 1
    assert [c.id for c in hook.iter_customers(q="3035550199")]  # it did land; a human checks


def test_retry_without_email_or_mobile_logs_that_it_cannot_check(
    airflow_db: None, dags: ModuleType, fast_conn: str, admin: SandboxAdmin, capfd: pytest.CaptureFixture[str]
) -> None:
    admin.fault("status", status=503, path="/lead_sources", times=2)  # try 1 fails before any POST
    dag_run = run_with_retry(dags, first_name="Home", last_name="Only", lead_source="Yelp", conn_id=fast_conn)
    assert (dag_run.state, task(dag_run).try_number) == ("success", 2)
    assert "cannot check whether an earlier try already created this customer" in "".join(capfd.readouterr())
    assert len(posts(admin)) == 1


def test_direct_execute_with_try_number_2_looks_up_even_for_create(
    connection: str, hook: HousecallProHook, admin: SandboxAdmin
) -> None:
    earlier = hook.create_customer(PERSON)  # as if try 1's POST landed and its answer was lost
    admin.clear_requests()
    customer_id, ti = execute(try_number=2, **PERSON, if_exists="create")
    assert customer_id == earlier.id and ti.xcoms["customer"]["id"] == earlier.id
    assert posts(admin) == []
    # ...but a different person sharing the email is not mistaken for this task's own record
    admin.clear_requests()
    other_id, _ = execute(try_number=2, **{**PERSON, "first_name": "Priya"}, if_exists="create")
    assert other_id != earlier.id and len(posts(admin)) == 1


# -- dry run --------------------------------------------------------------------------------------
def test_dry_run_makes_no_request_and_returns_a_fake_id(
    airflow_db: None, dags: ModuleType, connection: str, admin: SandboxAdmin, capfd: pytest.CaptureFixture[str]
) -> None:
    dag_run = run(dags, **FULL, dry_run=True)
    assert dag_run.state == "success"
    fake_id = xcom(dag_run, "create_customer")
    assert fake_id.startswith("cus_dryrun_")
    record = xcom(dag_run, "create_customer", "customer")
    assert record["dry_run"] is True and record["id"] == fake_id and record["email"] == FULL["email"]
    output = "".join(capfd.readouterr())
    assert "DRY RUN" in output and '"email": "maria.gonzalez@webform.test"' in output
    assert admin.requests() == []


def test_dry_run_from_the_connection_extra(
    sandbox: SandboxServer, admin: SandboxAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HCP_DRY", conn_json(sandbox.url, dry_run=True))
    customer_id, ti = execute(**PERSON, housecallpro_conn_id="hcp_dry")
    assert customer_id.startswith("cus_dryrun_") and ti.xcoms["customer"]["dry_run"] is True
    assert admin.requests() == []


def test_dry_run_still_validates(connection: str, admin: SandboxAdmin) -> None:
    with pytest.raises(CustomerInputError, match="mobile_number: must be exactly 10 digits"):
        execute(**{**PERSON, "mobile_number": "555"}, dry_run=True)
    assert admin.requests() == []


# -- secrets --------------------------------------------------------------------------------------
def test_api_key_in_no_log_line_or_xcom(
    airflow_db: None,
    dags: ModuleType,
    fast_conn: str,
    admin: SandboxAdmin,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    caplog.set_level("DEBUG")
    admin.fault("drop", when="after", method="POST", path="/customers")
    admin.fault("drop", method="GET", path="/customers", times=2)
    runs = [
        run_with_retry(
            dags, **FULL, if_exists="create", conn_id=fast_conn
        ),  # created after a dropped POST, on the retry
        run(dags, **FULL, conn_id=fast_conn),  # returned existing
        run(dags, **FULL, dry_run=True, conn_id=fast_conn),
        run(dags, **{**FULL, "lead_source": "TikTok"}, conn_id=fast_conn),  # failed
    ]
    output = "".join(capfd.readouterr()) + caplog.text
    assert "The POST did create customer" in output or "most likely created by an earlier try" in output
    assert "Returned existing customer" in output and "DRY RUN" in output and "TikTok" in output
    # Airflow 3.0's in-process supervisor logs, at DEBUG, the message that registers the connection password
    # with its secrets masker ("MaskSecret(value=...)"): Airflow's own line, not ours, and not at INFO.
    leaks = [line for line in output.splitlines() if API_KEY in line and "MaskSecret(" not in line]
    assert leaks == []
    with create_session() as session:
        rows = [
            XComModel.deserialize_value(row)
            for dag_run in runs
            for row in session.query(XComModel).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id)
        ]
    assert len(rows) == 6 and API_KEY not in json.dumps(rows)
