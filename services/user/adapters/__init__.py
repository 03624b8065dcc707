"""Adapters of the user service to PostgreSQL, keys and other services."""
