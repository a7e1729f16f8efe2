"""Screenshots of the Housecall Pro connection in Airflow's UI (docs/ui/*.png), taken in headless Chromium.

What a data engineer sees: Admin → Connections → Add Connection → type "Housecall Pro" (every extra in the
form), then the list's Test button on what the form saved: with the right key, with a wrong one, and without a
port (on Airflow 3.3.2 the UI's own bug then answers "Bad Request"; see README). Not part of ``make test``: it
needs Chromium and Playwright, which the suite does not install. Run it after changing what the form shows, and
look at the pictures (docs/UI.md)::

    sudo apt-get install chromium                       # Debian's Chromium; Playwright downloads no browser
    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright httpx
    /tmp/pw/bin/python scripts/ui_screenshots.py        # uses .venv's Airflow (make setup)

``--airflow-python .venv-floor/bin/python`` takes them on the floor version instead.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.e2e.airflow_stack import AirflowStack, free_port  # noqa: E402

KEY = "sandbox-ui-key"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def start_sandbox(python: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cli = python.parent / "housecallpro"
    proc = subprocess.Popen([str(cli), "sandbox", "--port", str(port), "--api-key", KEY], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/_sandbox/state", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def add_connection(page: Page, base: str, conn_id: str, host: str, port: str, key: str, shot: Path | None) -> None:
    page.goto(f"{base}/connections")
    page.get_by_role("button", name="Add Connection").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input").first.fill(conn_id)
    dialog.get_by_role("combobox").click()
    page.keyboard.type("Housecall Pro")
    page.get_by_role("option", name="Housecall Pro").click()
    dialog.get_by_label("API base URL (optional)").fill(host)
    if port:
        dialog.get_by_label("Port (443)").fill(port)
    dialog.get_by_label("API key").fill(key)
    if shot is not None:
        dialog.screenshot(path=str(shot.with_name(f"{shot.stem}-standard.png")))
    dialog.get_by_text("Extra Fields", exact=True).click()
    dialog.get_by_text("Timeout (seconds)").wait_for()
    if shot is not None:
        dialog.screenshot(path=str(shot.with_name(f"{shot.stem}-extras.png")))
        print(f"  {shot.relative_to(REPO)}-standard/-extras.png")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")


def test_connection(page: Page, base: str, conn_id: str, shot: Path) -> str:
    page.goto(f"{base}/connections")
    row = page.get_by_role("row").filter(has_text=conn_id)
    row.get_by_role("button", name="Test").click()
    toast = page.get_by_role("status").filter(has_text="Connection").last
    toast.wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)  # the toast fades in
    page.screenshot(path=str(shot))
    print(f"  {shot.relative_to(REPO)}")
    return toast.inner_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airflow-python", type=Path, default=REPO / ".venv" / "bin" / "python")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "ui")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sandbox, sandbox_url = start_sandbox(args.airflow_python)
    scratch = Path(tempfile.mkdtemp(prefix="hcp-ui-"))
    (scratch / "dags").mkdir()
    env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    try:
        with (
            AirflowStack(scratch / "home", {"dags": scratch / "dags"}, python=str(args.airflow_python), env=env) as af,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(30_000)
            print(f"Airflow at {af.url}, sandbox at {sandbox_url}; screenshots:")
            port = sandbox_url.rsplit(":", 1)[1]
            form = args.out / "connection-form.png"
            add_connection(page, af.url, "housecallpro_default", sandbox_url, port, KEY, form)
            add_connection(page, af.url, "housecallpro_wrong_key", sandbox_url, port, "not-the-key", None)
            add_connection(page, af.url, "housecallpro_no_port", sandbox_url, "", KEY, None)
            results = {
                name: test_connection(page, af.url, conn_id, args.out / f"connection-test-{name}.png")
                for name, conn_id in (
                    ("ok", "housecallpro_default"),
                    ("wrong-key", "housecallpro_wrong_key"),
                    ("no-port", "housecallpro_no_port"),
                )
            }
            for name, text in results.items():
                print(f"Test, {name}: {text!r}")
            browser.close()
    finally:
        sandbox.terminate()


if __name__ == "__main__":
    main()
