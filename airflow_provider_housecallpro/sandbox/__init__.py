"""A local Housecall Pro API for tests, demos and benchmarks (FastAPI + uvicorn; no Airflow imports).

``SandboxServer`` runs it in a thread, ``SandboxAdmin`` drives its ``/_sandbox`` admin API and ``create_app``
builds the ASGI app. Names are imported lazily so ``SandboxAdmin`` does not pull in FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .admin import SandboxAdmin, SandboxAdminError
    from .app import create_app
    from .clock import Clock
    from .records import WorldError
    from .server import SandboxServer
    from .world import World

__all__ = ["Clock", "SandboxAdmin", "SandboxAdminError", "SandboxServer", "World", "WorldError", "create_app"]

_HOME = {
    "SandboxAdmin": "admin",
    "SandboxAdminError": "admin",
    "create_app": "app",
    "SandboxServer": "server",
    "Clock": "clock",
    "World": "world",
    "WorldError": "records",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
