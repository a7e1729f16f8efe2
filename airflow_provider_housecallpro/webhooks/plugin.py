"""The API-server plugin: the receiver at ``<Airflow URL>/housecallpro/webhooks/<conn_id>`` (Airflow 3.0 and later).

Registered through the ``airflow.plugins`` entry point, so installing the provider is the whole set-up on Airflow's
side; the route refuses everything (404) until the connection has a ``webhook_secret``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_housecallpro.webhooks.in_airflow import AirflowRecorder
from airflow_provider_housecallpro.webhooks.receiver import create_receiver_app

URL_PREFIX = "/housecallpro/webhooks"


class HousecallProWebhooksPlugin(AirflowPlugin):
    name = "housecallpro_webhooks"
    fastapi_apps = [
        {"app": create_receiver_app(AirflowRecorder()), "url_prefix": URL_PREFIX, "name": "Housecall Pro webhooks"}
    ]
