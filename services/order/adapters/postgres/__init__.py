"""The order service's PostgreSQL adapters, one module per aggregate."""
