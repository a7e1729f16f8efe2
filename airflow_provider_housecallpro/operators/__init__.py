"""Operators of the Housecall Pro provider."""

from __future__ import annotations

from airflow_provider_housecallpro.operators.customers import CreateCustomerOperator

__all__ = ["CreateCustomerOperator"]
