"""The product service's use cases, one async handler per command."""
