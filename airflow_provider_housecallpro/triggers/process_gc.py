"""The triggerer's garbage collector: what is already in memory when the first Housecall Pro trigger starts is
left out of every later full collection.

CPython's full (generation 2) collection walks every container object of the process and holds the event loop
while it does. A triggerer carries ~170,000 of them before any trigger runs (Airflow, its providers, their
imports), and a busy one (a thousand accounts polled every ten seconds) runs a full collection every few seconds:
each stalled every trigger of the process for 100-180 ms on this project's benchmark machine. ``gc.freeze()``
moves every object alive at that moment into a permanent generation that collections skip, as Airflow's own DAG
processor does after start-up; objects are still freed when their last reference goes, and only reference cycles
among the frozen objects that become garbage later are never reclaimed (a bounded, one-time set).

Called once per process, when the first account poller is made (:func:`..shared_poller.shared_poller`): the
imports are done by then. It runs in a worker thread: reading the option may make Airflow load its providers'
configuration (entry points, imports), which must not block the triggerer's event loop. Turn it off with
``[housecallpro] triggerer_gc_freeze = False`` (or ``AIRFLOW__HOUSECALLPRO__TRIGGERER_GC_FREEZE=False``).
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)

SECTION, OPTION = "housecallpro", "triggerer_gc_freeze"
_done = False
_lock = threading.Lock()


def pending() -> bool:
    """Not done yet in this process (a cheap check for the event loop, before handing the work to a thread)."""
    return not _done


def enabled() -> bool:
    """The ``[housecallpro] triggerer_gc_freeze`` option (default on). May load the providers' configuration."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover (no Airflow core: nothing to configure)
        return True
    return conf.getboolean(SECTION, OPTION, fallback=True)


def freeze_once() -> bool:
    """Freeze what the process holds now, the first time this is called (when enabled). True if it froze."""
    global _done
    with _lock:
        if _done:
            return False
        _done = True
    if not enabled():
        return False
    gc.freeze()
    log.info(
        "Housecall Pro: %d objects left out of later full garbage collections (gc.freeze; "
        "[%s] %s = False turns this off)",
        gc.get_freeze_count(),
        SECTION,
        OPTION,
    )
    return True
