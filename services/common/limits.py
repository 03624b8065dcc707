"""Shared limits: rules both services enforce on the same data, written once."""
