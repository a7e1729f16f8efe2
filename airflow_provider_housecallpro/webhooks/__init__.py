"""Housecall Pro webhooks: a receiver that verifies signed deliveries and hands them to Airflow.

- :mod:`.signature` — the signature check (pure).
- :mod:`.deliveries` — what a verified body is: a job change for the watchers, or a raw event (pure).
- :mod:`.inbox` — the per-connection inbox the watchers read job deliveries from (pure JSON format).
- :mod:`.receiver` — the ASGI app (``POST /{conn_id}``), independent of where it runs.
- :mod:`.in_airflow` — where the app hands deliveries inside Airflow's API server (the plugin).
- :mod:`.plugin` — the API-server plugin that mounts the app at ``/housecallpro/webhooks``.
"""
