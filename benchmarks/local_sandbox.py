"""The benchmarks' local sandbox: started, its connection in the environment, an admin client and a hook."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_housecallpro.hooks.housecallpro import HousecallProHook
from airflow_provider_housecallpro.sandbox import SandboxAdmin, SandboxServer

KEY = "bench-key"


@contextmanager
def local_sandbox() -> Iterator[tuple[SandboxAdmin, HousecallProHook]]:
    with SandboxServer(api_key=KEY) as sandbox:
        os.environ["AIRFLOW_CONN_HOUSECALLPRO_DEFAULT"] = json.dumps(
            {"conn_type": "housecallpro", "host": sandbox.url, "password": KEY}
        )
        yield SandboxAdmin(sandbox.url), HousecallProHook()
