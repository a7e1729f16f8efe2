from __future__ import annotations

import json
import re
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_housecallpro import get_provider_info
from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.urls import base_url


def test_provider_info_matches_airflows_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    try:
        jsonschema.validate(info, schema)
    except jsonschema.ValidationError as exc:  # the floor version's schema predates conn-fields
        if "conn-fields" not in str(exc.path) and "conn-fields" not in exc.message:
            raise
        conn = info["connection-types"][0]
        jsonschema.validate(
            {**info, "connection-types": [{k: v for k, v in conn.items() if k != "conn-fields"}]}, schema
        )


def test_connection_type_metadata() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert conn["connection-type"] == HousecallProHook.conn_type == "housecallpro"
    assert conn["hook-name"] == HousecallProHook.hook_name == "Housecall Pro"
    assert conn["ui-field-behaviour"]["relabeling"]["password"] == "API key"
    assert conn["ui-field-behaviour"]["placeholders"]["host"] == "https://api.housecallpro.com"
    assert set(conn["conn-fields"]) == {"timeout", "max_retries", "company_id", "dry_run", "webhook_secret"}
    assert conn["conn-fields"]["webhook_secret"]["schema"]["format"] == "password"  # masked in the form


def test_hook_ui_field_behaviour_for_older_airflow_mirrors_provider_info() -> None:
    behaviour = HousecallProHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {
        "password": "API key",
        "host": "API base URL (optional)",
        "port": "Port (enter 443; Test needs it)",
    }
    assert "login" in behaviour["hidden_fields"] and "password" not in behaviour["hidden_fields"]
    # visible, so a connection made in the form stores one and 3.3.2's Test button works (see README)
    assert "port" not in behaviour["hidden_fields"]


@pytest.mark.parametrize(
    ("host", "port", "schema", "url"),
    [
        (None, None, None, "https://api.housecallpro.com"),
        ("", None, "", "https://api.housecallpro.com"),
        ("https://api.housecallpro.com/", None, None, "https://api.housecallpro.com"),
        ("127.0.0.1", 8765, None, "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8765", None, None, "http://127.0.0.1:8765"),
        ("proxy.example.com", None, None, "https://proxy.example.com"),
        ("localhost:8765", None, None, "http://localhost:8765"),
    ],
)
def test_base_url_from_connection_fields(host: str | None, port: int | None, schema: str | None, url: str) -> None:
    assert base_url(host, port, schema, "https://api.housecallpro.com") == url


def test_the_package_holds_only_the_provider() -> None:
    """What the wheel ships (``airflow_provider_housecallpro/``, see pyproject's packages.find) has no messaging:
    no SMS or SMTP code, no message sinks, no notifier in provider info. They live with the examples."""
    import airflow_provider_housecallpro

    package = Path(airflow_provider_housecallpro.__file__).parent
    shipped = {path.relative_to(package).as_posix(): path.read_text() for path in package.rglob("*.py")}
    assert not [name for name in shipped if "notification" in name or "sink" in name or "sms" in name]
    words = re.compile(r"\b(smtplib|smtp|twilio|sms|SmsHook|SmsNotifier|MessageStore)\b", re.IGNORECASE)
    assert {name: words.findall(text) for name, text in shipped.items() if words.search(text)} == {}
    assert "notifications" not in get_provider_info()
