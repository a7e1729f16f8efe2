"""The provider as Airflow sees it: CLI listings, connection form metadata, `airflow connections test`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import airflow
import pytest
from packaging.version import Version

from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer
from tests.conftest import API_KEY, conn_json

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def run_airflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled", **env}
    return subprocess.run([AIRFLOW, *args], env=full_env, capture_output=True, text=True, timeout=300)


def json_output(out: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    """The JSON document in a CLI's stdout (Airflow may log lines before it)."""
    assert out.returncode == 0, out.stdout + out.stderr
    start = out.stdout.index("[{")
    return json.loads(out.stdout[start:])  # type: ignore[no-any-return]


def test_providers_list_shows_the_package() -> None:
    out = run_airflow("providers", "list", "--output", "json")
    packages = {p["package_name"]: p for p in json_output(out)}
    assert "airflow-provider-housecallpro" in packages


def test_providers_hooks_lists_housecallpro_as_housecall_pro() -> None:
    out = run_airflow("providers", "hooks", "--output", "json")
    (row,) = [h for h in json_output(out) if h.get("connection_type") == "housecallpro"]
    assert row["hook_name"] == "Housecall Pro"
    assert row["class"] == "airflow_provider_housecallpro.hooks.housecallpro.HousecallProHook"


@pytest.mark.skipif(Version(airflow.__version__) < Version("3.2"), reason="conn-fields metadata is served from 3.2")
def test_connection_form_metadata_served_to_the_ui() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "housecallpro"]
    assert meta.hook_name == "Housecall Pro"
    fields = meta.standard_fields
    assert fields is not None
    assert fields.password.title == "API key"  # type: ignore[union-attr]
    assert fields.host.title == "API base URL (optional)"  # type: ignore[union-attr]
    assert fields.host.placeholder == "https://api.housecallpro.com"  # type: ignore[union-attr]
    assert fields.login.hidden and fields.url_schema.hidden  # type: ignore[union-attr]
    # Airflow 3.3.2's Test button needs the port stored: the label asks for it (the form cannot pre-fill it).
    assert not fields.port.hidden and "enter 443" in fields.port.title  # type: ignore[union-attr,operator]
    extras = meta.extra_fields or {}
    # every extra the code reads
    assert set(extras) == {"timeout", "max_retries", "company_id", "dry_run", "webhook_secret"}
    assert extras["max_retries"]["schema"]["title"] == "Retry limit (0 to 20)"
    for name, field in extras.items():
        # No default is saved for a field left empty, and no bound the 3.3 number input would clamp to silently;
        # the help text is Markdown, rendered as such (description null).
        assert field["value"] is None and "default" not in field["schema"], name
        assert "minimum" not in field["schema"] and "maximum" not in field["schema"], name
        assert field["description"] is None and field["schema"]["description_md"], name


def test_housecallpro_test_connection_cli(sandbox: SandboxServer, admin: SandboxAdmin) -> None:
    cli = str(Path(sys.executable).parent / "housecallpro")
    env = {**os.environ, "AIRFLOW_CONN_HCP_CLI": conn_json(sandbox.url)}
    out = subprocess.run([cli, "test-connection", "hcp_cli"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        out.stdout.strip() == "Connected to Housecall Pro company 'Lone Star Home Services' (time zone America/Chicago)"
    )
    assert [r["path"] for r in admin.requests()] == ["/company"]
    env["AIRFLOW_CONN_HCP_CLI"] = conn_json(sandbox.url, api_key="nope")
    out = subprocess.run([cli, "test-connection", "hcp_cli"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Check the API key in this connection" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "nope" not in out.stdout + out.stderr
    out = subprocess.run([cli, "test-connection", "hcp_missing"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "hcp_missing" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_connections_test_succeeds_against_the_sandbox(sandbox: SandboxServer, admin: SandboxAdmin) -> None:
    out = run_airflow("connections", "test", "hcp_cli", AIRFLOW_CONN_HCP_CLI=conn_json(sandbox.url))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Connection success" in out.stdout
    assert [r["path"] for r in admin.requests()] == ["/company"]
    assert API_KEY not in out.stdout + out.stderr


def test_connections_test_with_a_wrong_key_says_to_check_the_api_key(sandbox: SandboxServer) -> None:
    out = run_airflow("connections", "test", "hcp_cli", AIRFLOW_CONN_HCP_CLI=conn_json(sandbox.url, api_key="nope"))
    # Airflow 3.0 prints the failure but exits 0; later versions exit 1.
    assert out.returncode == (0 if Version(airflow.__version__) < Version("3.1") else 1)
    assert "Connection failed" in out.stdout
    assert "Check the API key in this connection" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


# -- the Test button (HousecallProHook.test_connection, what `POST /api/v2/connections/test` calls) -----------
TEMP_ID = "3Cx3lzMa"  # the UI tests under a random id like this one, which the user never saw


def ui_test(monkeypatch: pytest.MonkeyPatch, url: str, **extra: object) -> tuple[bool, str]:
    from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

    monkeypatch.setenv(f"AIRFLOW_CONN_{TEMP_ID.upper()}", conn_json(url, **extra))
    return HousecallProHook(TEMP_ID).test_connection()


def test_the_test_button_names_this_connection_not_the_temporary_id(
    sandbox: SandboxServer, admin: SandboxAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

    assert ui_test(monkeypatch, sandbox.url) == (
        True,
        "Connected to Housecall Pro company 'Lone Star Home Services' (time zone America/Chicago)",
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{TEMP_ID.upper()}", conn_json(sandbox.url, api_key="nope"))
    ok, message = HousecallProHook(TEMP_ID).test_connection()
    assert not ok and "Check the API key in this connection" in message and TEMP_ID not in message
    assert "nope" not in message and API_KEY not in message


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        ({"max_retries": 99}, "Extra 'max_retries' in this connection must be between 0 and 20; got 99"),
        ({"max_retries": -1}, "Extra 'max_retries' in this connection must be between 0 and 20; got -1"),
        ({"timeout": 0}, "Extra 'timeout' in this connection must be at least 1; got 0"),
    ],
)
def test_the_test_button_refuses_an_extra_out_of_range_before_any_request(
    sandbox: SandboxServer, admin: SandboxAdmin, monkeypatch: pytest.MonkeyPatch, extra: dict[str, int], rule: str
) -> None:
    assert ui_test(monkeypatch, sandbox.url, **extra) == (False, rule)
    assert admin.requests() == []


def test_the_test_button_makes_one_attempt_within_ten_seconds(
    sandbox: SandboxServer, admin: SandboxAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_housecallpro.hooks.housecallpro import TEST_CLIENT_OPTIONS, TEST_SECONDS

    # Whatever the connection's extras say (here: 20 retries, 60 s timeouts), the test is one bounded attempt.
    admin.fault("status", path="/company", status=503, times=5)
    ok, message = ui_test(monkeypatch, sandbox.url, max_retries=20, timeout=60)
    assert not ok and "503" in message
    assert len(admin.requests(path="/company")) == 1
    admin.clear_faults()
    admin.clear_requests()
    admin.fault("delay", path="/company", seconds=TEST_CLIENT_OPTIONS["timeout"] + 2)  # the answer comes too late
    ok, message = ui_test(monkeypatch, sandbox.url, max_retries=20, timeout=60)
    assert not ok and "timed out" in message.lower(), message
    assert len(admin.requests(path="/company")) == 1
    assert TEST_CLIENT_OPTIONS["connect_timeout"] + TEST_CLIENT_OPTIONS["timeout"] <= TEST_SECONDS
