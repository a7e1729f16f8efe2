"""Web-form lead → Housecall Pro customer, ready for the service team to quote and schedule.

**The business problem.** Someone fills in the "Request a quote" form on the company's website. The lead
should land in Housecall Pro as a customer right away (validated: a 10-digit mobile number, a well-formed
email), without duplicates when the form is submitted twice, and the new customer ID should flow on — into
the CRM, and to the team that will call the lead back.

**How it works.** One DAG run per form submission, with the form as the run's `conf` (the params below
describe and validate it in the "Trigger DAG" form). A website backend triggers it through Airflow's REST
API::

    POST /api/v2/dags/hcp_web_form_lead_to_customer/dagRuns
    {"logical_date": null, "conf": {"first_name": "Ada", "last_name": "Lovelace",
                                    "email": "ada@example.com", "mobile_number": "5125551234"}}

1. `create_customer` — `CreateCustomerOperator` validates the input before any request and creates
   the customer (lead source "Website", tagged `web-form`, the form's message as notes). A customer with
   the same email or mobile number is returned instead of created (`if_exists="return_existing"`), so a
   double submission or a retry never creates a second customer. Its return value is the customer ID; the
   full record is in the XCom `customer`.
2. `store_in_crm` gets the ID (`create_customer.output`) and stores it on the CRM contact (found or
   created by email, stage "Lead" unless it is further along).
3. `tell_the_team` emails the `team_email` param (if set) that a new lead is waiting, with its ID.

If the lead cannot be added (say, an invalid mobile number: the operator rejects it before any request, and
does not retry), the task's `on_failure_callback` — an `SmsNotifier`, Airflow's notifier interface —
texts the `team_phone` param (if set), so someone calls the lead back anyway.

**For production, change:** the connections (`housecallpro_default`, `smtp_default`, `hcp_crm`; see
`hcp_booking_confirmation_crm_sync`), the `lead_source` and `tags`, `team_email` and `team_phone`
(or swap the notifier: Airflow's `SmtpNotifier`, Slack's, ... take the same place). To test against
a real account without writing to it, set `"dry_run": true` in the Housecall Pro connection's extras.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowSkipException  # one import for Airflow 3.0 - 3.3
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, Param, XComArg, get_current_context, task
from hcp_messaging import SmsNotifier, format_phone, person_name, send_email

from airflow_provider_housecallpro.operators.customers import XCOM_CUSTOMER_KEY, CreateCustomerOperator

HCP_CONN_ID = "housecallpro_default"
SMTP_CONN_ID = "smtp_default"
CRM_CONN_ID = "hcp_crm"
STAGE_LEAD = "Lead"
WEB_FORM_TAG = "web-form"


def crm() -> DbApiHook:
    hook: DbApiHook = DbApiHook.get_hook(CRM_CONN_ID)
    return hook


def _optional(name: str) -> str:
    """A template for an optional form field: missing or null renders as "" (= not given)."""
    return "{{ params.%s or '' }}" % name  # noqa: UP031 (Jinja braces)


with DAG(
    dag_id="hcp_web_form_lead_to_customer",
    description="Web-form lead (the run's conf) -> Housecall Pro customer -> its ID into the CRM and to the team",
    schedule=None,  # triggered per form submission
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "first_name": Param(type="string", minLength=1, title="First name", description="The lead's first name"),
        "last_name": Param(type="string", minLength=1, title="Last name", description="The lead's last name"),
        "email": Param(None, type=["null", "string"], title="Email", description="The lead's email address"),
        "mobile_number": Param(
            None, type=["null", "string"], title="Mobile number", description="10 digits, numbers only: 5125551234"
        ),
        "company": Param(None, type=["null", "string"], title="Company", description="The lead's company, if any"),
        "message": Param(None, type=["null", "string"], title="Message", description="Kept as the customer's notes"),
        "lead_source": Param(
            "Website", type="string", title="Lead source", description="One of the account's lead sources"
        ),
        "team_email": Param(
            None, type=["null", "string"], title="Team email", description="Who to tell about the new lead (or nobody)"
        ),
        "team_phone": Param(
            None,
            type=["null", "string"],
            title="Team phone",
            description="Who to text when a lead cannot be added (or nobody)",
        ),
    },
    tags=["housecallpro", "example"],
    doc_md=__doc__,
) as dag:
    create_customer = CreateCustomerOperator(
        task_id="create_customer",
        housecallpro_conn_id=HCP_CONN_ID,
        first_name="{{ params.first_name }}",
        last_name="{{ params.last_name }}",
        email_address=_optional("email"),
        mobile_number=_optional("mobile_number"),
        company=_optional("company"),
        notes=_optional("message"),
        lead_source=_optional("lead_source"),
        tags=[WEB_FORM_TAG],
        if_exists="return_existing",
        # `email` here is the customer's address, which is also where Airflow would send its task-failure
        # alert emails (BaseOperator.email): never alert the customer.
        email_on_failure=False,
        email_on_retry=False,
        on_failure_callback=SmsNotifier(
            to="{{ params.team_phone or '' }}",
            body="Web lead {{ params.first_name }} {{ params.last_name }} could not be added to Housecall Pro "
            "(run {{ run_id }}). Please call them back: {{ params.mobile_number or params.email or 'no contact' }}.",
            sms_conn_id="sms_default",
        ),
    )
    customer_id = create_customer.output  # the new (or existing) customer's ID
    record = XComArg(create_customer, key=XCOM_CUSTOMER_KEY)  # the full customer, as Housecall Pro returned it

    ensure_crm_table = SQLExecuteQueryOperator(
        task_id="ensure_crm_table", conn_id=CRM_CONN_ID, sql="sql/crm_contacts.sql"
    )

    @task
    def store_in_crm(customer_id: str, customer: dict[str, Any]) -> dict[str, Any]:
        """Find or create the CRM contact by email and store the Housecall Pro customer ID on it."""
        email = (customer.get("email") or "").strip().lower()
        if not email:
            raise AirflowSkipException(f"Customer {customer_id} has no email address: the CRM is keyed by email")
        db = crm()
        p = db.placeholder
        row = db.get_first(f"SELECT tags, lifecycle_stage FROM crm_contacts WHERE email = {p}", parameters=(email,))
        tags = [t.strip() for t in ((row[0] if row else None) or "").split(",") if t.strip()]
        fields = {
            "first_name": customer.get("first_name"),
            "last_name": customer.get("last_name"),
            "phone": customer.get("mobile_number"),
            "hcp_customer_id": customer_id,
            "tags": ", ".join(tags if WEB_FORM_TAG in tags else [*tags, WEB_FORM_TAG]),
            "lifecycle_stage": (row[1] if row and row[1] else STAGE_LEAD),
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if row is None:
            columns = ["email", *fields]
            sql = f"INSERT INTO crm_contacts ({', '.join(columns)}) VALUES ({', '.join([p] * len(columns))})"
            db.run(sql, parameters=(email, *fields.values()))
        else:
            assignments = ", ".join(f"{column} = {p}" for column in fields)
            db.run(f"UPDATE crm_contacts SET {assignments} WHERE email = {p}", parameters=(*fields.values(), email))
        return {"email": email, "created": row is None, **fields}

    @task
    def tell_the_team(customer_id: str, customer: dict[str, Any]) -> str:
        team = get_current_context()["params"]["team_email"]
        if not team:
            raise AirflowSkipException("No team_email given: nobody to tell")
        name = person_name(customer)
        details = [
            f"Name: {name}",
            *([f"Company: {customer['company']}"] if customer.get("company") else []),
            *([f"Email: {customer['email']}"] if customer.get("email") else []),
            *([f"Mobile: {format_phone(customer['mobile_number'])}"] if customer.get("mobile_number") else []),
            f"Housecall Pro customer: {customer_id}",
        ]
        notes = customer.get("notes")
        message = notes if isinstance(notes, str) and notes else None
        text = "\n\n".join(
            [
                "A new lead came in through the website form.",
                "\n".join(details),
                *([f"They wrote: {message}"] if message else []),
                "The customer is in Housecall Pro, ready to quote and schedule.",
            ]
        )
        send_email(team, f"New web lead: {name}", text, smtp_conn_id=SMTP_CONN_ID)
        return team

    ensure_crm_table >> store_in_crm(customer_id, record)
    tell_the_team(customer_id, record)
