"""Apache Airflow provider for Housecall Pro."""

from __future__ import annotations

from typing import Any

from airflow_provider_housecallpro.urls import DEFAULT_BASE_URL

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]

CONN_TYPE = "housecallpro"

# Extras a user may set on the connection; the same keys are read by the hook.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "Read timeout for one HTTP request to Housecall Pro. Default 30.",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30},
    },
    "max_retries": {
        "label": "Retry limit",
        "description": "How many times a failed GET (429, 5xx, connection error, timeout) is retried. Default 5.",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20, "default": 5},
    },
    "company_id": {
        "label": "Company ID (X-Company-Id)",
        "description": "Only for multi-location accounts: the location's company id, sent as X-Company-Id.",
        "schema": {"type": ["string", "null"]},
    },
    "dry_run": {
        "label": "Dry run (create customer)",
        "description": "CreateCustomerOperator validates and logs the request but sends nothing. Default off.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "webhook_secret": {
        "label": "Webhook signing secret",
        "description": "Only for real-time webhooks: the signing secret set with the webhook URL in Housecall Pro.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
}
# The extras the HTTP client reads (``dry_run`` is read by the operator).
CLIENT_EXTRAS = ("timeout", "max_retries", "company_id")
KEYS_URL = "https://docs.housecallpro.com/docs/housecall-public-api/"

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The port stays visible: Airflow 3.3.2's Test button sends port 0 for a connection stored without one and is
    # refused ("differs from the stored connection", apache/airflow#73298); with the port stored it works.
    "hidden-fields": ["schema", "login", "extra"],
    "relabeling": {"password": "API key", "host": "API base URL (optional)", "port": "Port (443)"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "port": "443",
        "password": f"Housecall Pro API key (App Store → API Key Management; see {KEYS_URL})",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-housecallpro",
        "name": "Housecall Pro",
        "description": "`Housecall Pro <https://www.housecallpro.com/>`__: jobs and customers for field-service "
        "businesses — job scheduled / job completed sensors and a create-customer operator.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Housecall Pro",
                "external-doc-url": "https://docs.housecallpro.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Housecall Pro",
                "python-modules": ["airflow_provider_housecallpro.hooks.housecallpro"],
            }
        ],
        "operators": [
            {
                "integration-name": "Housecall Pro",
                "python-modules": ["airflow_provider_housecallpro.operators.customers"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Housecall Pro",
                "python-modules": ["airflow_provider_housecallpro.sensors.jobs"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Housecall Pro",
                "python-modules": [
                    "airflow_provider_housecallpro.triggers.jobs",
                    "airflow_provider_housecallpro.triggers.events",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_housecallpro.hooks.housecallpro.HousecallProHook",
                "hook-name": "Housecall Pro",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
