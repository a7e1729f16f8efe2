"""Apache Airflow provider for Housecall Pro."""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_housecallpro.urls import DEFAULT_BASE_URL

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]

CONN_TYPE = "housecallpro"

# The one wording for the key: the form's label, where Housecall Pro's own UI makes keys, and its docs.
KEY_LABEL = "API key"
KEYS_PATH = "My Apps → App Store → API Key Management"
KEYS_URL = "https://docs.housecallpro.com/docs/housecall-public-api/"
KEYS_WHERE = f"Housecall Pro: {KEYS_PATH} → Generate API Key"

# Bounds of the numeric extras: the hook refuses a value outside them (naming the extra and the bound), and the
# form states them in the label. They are not in the form's schema: Airflow 3.3's number input would silently
# clamp a value to them (99 retries saved as 20) instead of saying so.
EXTRA_BOUNDS: dict[str, tuple[float, float | None]] = {"timeout": (1, None), "max_retries": (0, 20)}

# Extras a user may set on the connection; the same keys are read by the hook. No schema carries a default: the
# 3.3 form saves every field, and a field left empty is saved as null (the hook's default), not as a pinned
# value. Descriptions are Markdown (3.2+ renders ``description_md``; the 3.0/3.1 form shows plain text).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Request timeout (seconds, at least 1)",
        "schema": {
            "type": ["number", "null"],
            "description_md": "Read timeout of one HTTP request to Housecall Pro. Empty: 30.",
        },
    },
    "max_retries": {
        "label": "Retry limit (0 to 20)",
        "schema": {
            "type": ["integer", "null"],
            "description_md": "How many times a failed GET (429, 5xx, connection error, timeout) is retried. Empty: 5.",
        },
    },
    "company_id": {
        "label": "Company ID (X-Company-Id)",
        "schema": {
            "type": ["string", "null"],
            "description_md": "Only for multi-location accounts: the location's company id, sent as "
            f"`X-Company-Id`. Keys and ids: [Housecall Pro's API docs]({KEYS_URL}).",
        },
    },
    "dry_run": {
        "label": "Dry run (create customer)",
        "schema": {
            "type": ["boolean", "null"],
            "description_md": "On: CreateCustomerOperator validates and logs the request but sends nothing. "
            "Default: off.",
        },
    },
    "webhook_secret": {
        "label": "Webhook signing secret",
        "schema": {
            "type": ["string", "null"],
            "format": "password",
            "description_md": "Only for real-time webhooks: the signing secret set with the webhook URL in "
            'Housecall Pro (README, "Real-time (webhooks)").',
        },
    },
}
# The extras the HTTP client reads (``dry_run`` is read by the operator).
CLIENT_EXTRAS = ("timeout", "max_retries", "company_id")

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The port stays visible and says it is needed: Airflow 3.3.2's Test button sends port 0 for a connection
    # stored without one and is refused ("differs from the stored connection", apache/airflow#73298) before the
    # provider is called; with the port stored it works. The form cannot pre-fill a standard field.
    "hidden-fields": ["schema", "login", "extra"],
    "relabeling": {
        "password": KEY_LABEL,
        "host": "API base URL (optional)",
        "port": "Port (enter 443; Test needs it)",
    },
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "port": "type 443",
        "password": f"from {KEYS_PATH}",
    },
}


def plain_text(markdown: str) -> str:
    """A field description for forms that show plain text: ``[text](url)`` → ``text (url)``, no backticks."""
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", markdown).replace("`", "")


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
        "config": {
            "housecallpro": {
                "description": "The Housecall Pro provider's process-wide settings.",
                "options": {
                    "triggerer_gc_freeze": {
                        "description": "When the first Housecall Pro trigger of a process starts (in the triggerer: "
                        "Airflow and its providers are imported by then), call gc.freeze() once, so that CPython's "
                        "full garbage collections skip everything already in memory. With many accounts a full "
                        "collection otherwise stalls every trigger of the process for 100-200 ms every few "
                        "seconds. Only reference cycles among those objects that become garbage later are never "
                        "reclaimed.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    }
                },
            }
        },
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
