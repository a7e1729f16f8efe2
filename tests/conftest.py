"""Shared fixtures: an isolated AIRFLOW_HOME, one live sandbox per session, a connection pointing at it."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Airflow: a private, throw-away AIRFLOW_HOME.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="hcp-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer  # noqa: E402

# A distinctive key, so tests can assert it never shows up anywhere.
API_KEY = "hcp-test-SECRET-9f3c2a7e51"
CONN_ID = "housecallpro_default"
# Small, fast retry settings for the suite (the defaults are for production).
FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 2.0, "connect_timeout": 2.0}


def conn_json(url: str, api_key: str = API_KEY, **extra: object) -> str:
    return json.dumps({"conn_type": "housecallpro", "host": url, "password": api_key, "extra": extra})


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(api_key=API_KEY, seed=1) as server:
        yield server


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[SandboxAdmin]:
    """The sandbox's admin API, with a fresh world, no faults and an empty request log."""
    client = SandboxAdmin(sandbox.url)
    client.reset(seed=1)
    yield client
    client.clear_faults()


@pytest.fixture
def connection(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``housecallpro_default`` as an env-var connection (JSON) pointing at the sandbox."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn_json(sandbox.url))
    return CONN_ID


@pytest.fixture
def hook(connection: str, admin: SandboxAdmin):  # type: ignore[no-untyped-def]
    from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook

    h = HousecallProHook(connection, client_options=FAST)
    yield h
    h.close()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record at DEBUG, httpx's and ours included."""
    caplog.set_level(logging.DEBUG)
    return caplog
