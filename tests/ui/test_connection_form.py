"""The Housecall Pro connection as a data engineer meets it: Airflow 3.3's form and Test button, in a real browser.

Headless Chromium (Debian's, ``make browser`` installs it) driven by Playwright over a real ``airflow api-server``
(nothing else of Airflow: the form and the Test button need only the API server and its metadata DB) and the
session's sandbox. A user's path: Admin → Connections → Add Connection → type "Housecall Pro", the fields filled
in as the labels ask, Save, then the list's Test button — with the right key (the company's name), a wrong one
(the 401 and where keys are made) and an out-of-range retry limit (refused, naming the bound). Also: the key is
never shown in clear, the docs link in the form is a link, and the stored connection holds what the user set
(fields left empty are stored as null, so the hook's defaults apply) instead of the form's defaults.

Only on Airflow >= 3.2 (``.venv``, 3.3.2): older versions build the form from the hook's FAB widgets.
``HCP_UI_SHOTS=docs/ui`` keeps the screenshots there (``make ui-screenshots``); otherwise they go to tmp_path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.version import Version

from airflow_provider_housecallpro import CONN_FIELDS, KEY_LABEL, KEYS_URL, KEYS_WHERE, UI_FIELD_BEHAVIOUR
from airflow_provider_housecallpro.sandbox.catalog import COMPANY_NAME
from tests.conftest import API_KEY
from tests.e2e.airflow_stack import REPO, AirflowStack

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("HCP_CHROMIUM", "/usr/bin/chromium"))
# The machine's probe: without the background-networking flags Chromium's own connections get refused here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000
LABELS = UI_FIELD_BEHAVIOUR["relabeling"]


def _airflow_version() -> Version:
    import airflow

    return Version(airflow.__version__)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("HCP_UI_SHOTS")
    path = (REPO / folder) if folder else tmp_path_factory.mktemp("ui-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    if _airflow_version() < Version("3.2"):
        pytest.skip("Airflow < 3.2 builds the connection form from FAB widgets; the browser test drives 3.3's form")
    if not CHROMIUM.exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: `make browser` installs Debian's (or set HCP_CHROMIUM)")
    scratch = tmp_path_factory.mktemp("ui-airflow")
    (scratch / "dags").mkdir()
    env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    with AirflowStack(scratch / "home", {"dags": scratch / "dags"}, env=env, components=("api-server",)) as af:
        yield af


@pytest.fixture(scope="module")
def page(api_server: AirflowStack) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def add_connection(
    page, base: str, conn_id: str, *, host: str, port: str, key: str, extras: dict[str, str], shots: Path | None
) -> None:
    """Fill in the form as its labels ask, and save."""
    from playwright.sync_api import expect

    page.goto(f"{base}/connections")
    page.get_by_role("button", name="Add Connection").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input").first.fill(conn_id)
    dialog.get_by_role("combobox").click()
    page.keyboard.type("Housecall Pro")
    page.get_by_role("option", name="Housecall Pro").click()
    dialog.get_by_label(LABELS["host"]).fill(host)
    dialog.get_by_label(LABELS["port"]).fill(port)
    key_input = dialog.get_by_label(KEY_LABEL, exact=True)
    key_input.fill(key)
    expect(key_input).to_have_attribute("type", "password")  # the key is never shown in clear
    if shots is not None:
        dialog.screenshot(path=str(shots / "connection-form-standard.png"), animations="disabled")
    dialog.get_by_text("Extra Fields", exact=True).click()
    for name, value in extras.items():
        field = dialog.get_by_label(CONN_FIELDS[name]["label"])
        field.fill(value)
        field.blur()
        expect(field).to_have_value(value)  # not clamped to a bound behind the user's back
    link = dialog.get_by_role("link", name="Housecall Pro's API docs")
    expect(link).to_have_attribute("href", KEYS_URL)
    if shots is not None:
        dialog.screenshot(path=str(shots / "connection-form-extras.png"), animations="disabled")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()


def press_test(page, base: str, conn_id: str, expected: str, shot: Path) -> str:
    """The list's Test button on ``conn_id``; the toast that answers."""
    from playwright.sync_api import expect

    page.goto(f"{base}/connections")
    page.get_by_role("row").filter(has_text=conn_id).get_by_role("button", name="Test").click()
    toast = page.get_by_role("status").filter(has_text=expected)
    expect(toast).to_be_visible()
    page.screenshot(path=str(shot), animations="disabled")
    text: str = toast.inner_text()
    return text


def test_a_connection_made_in_the_form_tests_ok_and_a_wrong_key_says_where_keys_are_made(
    api_server: AirflowStack, page, sandbox, shots: Path
) -> None:
    port = sandbox.url.rsplit(":", 1)[1]
    add_connection(
        page,
        api_server.url,
        "housecallpro_default",
        host=sandbox.url,
        port=port,
        key=API_KEY,
        extras={"max_retries": "3"},
        shots=shots,
    )
    add_connection(
        page,
        api_server.url,
        "housecallpro_wrong_key",
        host=sandbox.url,
        port=port,
        key="not-the-key",
        extras={},
        shots=None,
    )
    add_connection(
        page,
        api_server.url,
        "housecallpro_99_retries",
        host=sandbox.url,
        port=port,
        key=API_KEY,
        extras={"max_retries": "99"},
        shots=None,
    )

    # Stored: what the user set, and null (the hook's default) for what they left empty; never a pinned default.
    stored = api_server.api_json("GET", "/api/v2/connections/housecallpro_default")
    assert stored["port"] == int(port) and stored["host"] == sandbox.url, stored
    extra = json.loads(stored["extra"])
    assert extra.get("max_retries") == 3, extra
    assert {k: v for k, v in extra.items() if k != "max_retries"} == dict.fromkeys(set(extra) - {"max_retries"})
    assert API_KEY not in json.dumps(stored)

    ok = press_test(
        page, api_server.url, "housecallpro_default", "Connected to Housecall Pro", shots / "connection-test-ok.png"
    )
    assert f"Connected to Housecall Pro company '{COMPANY_NAME}'" in ok, ok

    wrong = press_test(page, api_server.url, "housecallpro_wrong_key", "401", shots / "connection-test-wrong-key.png")
    assert "Housecall Pro rejected the API key (401" in wrong, wrong
    assert f"Check the {KEY_LABEL} in this connection; keys are made in {KEYS_WHERE}" in wrong, wrong
    assert "housecallpro_wrong_key" not in wrong and API_KEY not in wrong

    bound = press_test(
        page, api_server.url, "housecallpro_99_retries", "max_retries", shots / "connection-test-out-of-range.png"
    )
    assert "Extra 'max_retries' in this connection must be between 0 and 20; got 99" in bound, bound
