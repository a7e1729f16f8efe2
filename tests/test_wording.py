"""One wording for the API key and where it is made: the form, the error messages, the README, the docs and the
example DAGs' docs all say it the way Housecall Pro's own UI does (My Apps → App Store → API Key Management)."""

from __future__ import annotations

import ast
import re

import pytest

from airflow_provider_housecallpro import CONN_FIELDS, KEY_LABEL, KEYS_PATH, KEYS_URL, UI_FIELD_BEHAVIOUR
from airflow_provider_housecallpro.api.client import HousecallProClient
from airflow_provider_housecallpro.api.core import ClientConfig
from airflow_provider_housecallpro.api.errors import HousecallProAuthError, HousecallProConfigError
from airflow_provider_housecallpro.api.operations import get_company
from airflow_provider_housecallpro.sandbox import SandboxServer
from tests.conftest import EXAMPLE_DAGS, REPO

# Other names the key and its page have gone by; none may come back.
STALE = ["password field", "My Apps → API Key Management", "API token"]


def form_texts() -> dict[str, str]:
    texts = {f"placeholder {k}": v for k, v in UI_FIELD_BEHAVIOUR["placeholders"].items()}
    texts |= {f"label {k}": v for k, v in UI_FIELD_BEHAVIOUR["relabeling"].items()}
    for name, field in CONN_FIELDS.items():
        texts[f"extra {name}"] = f"{field['label']}: {field['schema']['description_md']}"
    return texts


def message_texts(sandbox_url: str) -> dict[str, str]:
    """What a user reads when the key is wrong or missing: the real messages, from the sandbox."""
    config = ClientConfig(api_key="not-the-key", base_url=sandbox_url, source="connection 'c'", max_retries=0)
    with HousecallProClient(config) as client, pytest.raises(HousecallProAuthError) as wrong:
        client.call(get_company())
    with pytest.raises(HousecallProConfigError) as missing:
        ClientConfig(api_key="", source="connection 'c'")
    return {"401": str(wrong.value), "no key": str(missing.value)}


def doc_texts() -> dict[str, str]:
    texts = {"README.md": (REPO / "README.md").read_text()}
    texts |= {f"docs/{p.name}": p.read_text() for p in sorted((REPO / "docs").glob("*.md"))}
    for dag_file in sorted(EXAMPLE_DAGS.glob("*.py")):  # the DAG docs are the example DAGs' module docstrings
        texts[f"example_dags/{dag_file.name}"] = ast.get_docstring(ast.parse(dag_file.read_text())) or ""
    return texts


def test_one_wording_for_the_key_and_where_it_is_made(sandbox: SandboxServer) -> None:
    form, messages, docs = form_texts(), message_texts(sandbox.url), doc_texts()
    everything = {**form, **messages, **docs}

    # Where keys are made: wherever the page is named, it is named the one way.
    for where, text in everything.items():
        for match in re.finditer("API Key Management", text, flags=re.IGNORECASE):
            before = text[: match.end()].replace("*", "").replace("\n", " ")
            assert before.endswith(KEYS_PATH), f"{where}: {text[max(match.start() - 60, 0) : match.end()]!r}"
        for stale in STALE:
            assert stale.lower() not in text.lower(), f"{where} says {stale!r}"

    # ...and it is named where a user needs it: the key's field, both messages, the README.
    assert KEYS_PATH in form["placeholder password"]
    assert KEYS_PATH in messages["401"] and KEYS_PATH in messages["no key"]
    assert KEYS_PATH in docs["README.md"].replace("*", "").replace("\n", " ")

    # The key is called the "API key", as the form labels it, in the messages too.
    assert form["label password"] == KEY_LABEL
    assert f"Check the {KEY_LABEL} in connection 'c'" in messages["401"]
    assert f"No Housecall Pro {KEY_LABEL} in connection 'c'" in messages["no key"]

    # The docs link is a link (Markdown) in the form and the README, not text at the end of a placeholder.
    link = re.compile(r"\]\(" + re.escape(KEYS_URL) + r"\)")
    assert any(link.search(text) for name, text in form.items() if name.startswith("extra ")), form
    assert link.search(docs["README.md"])
    assert all(KEYS_URL not in text for name, text in form.items() if name.startswith("placeholder "))


def test_the_example_dags_that_need_the_key_say_where_it_is_made() -> None:
    docs = doc_texts()
    needing = {name: text for name, text in docs.items() if name.startswith("example_dags/") and "API key" in text}
    assert needing, "no example DAG doc mentions the API key"
    for name, text in needing.items():
        assert KEYS_PATH in text.replace("\n", " "), name
