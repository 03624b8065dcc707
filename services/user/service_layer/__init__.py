"""The user service's use cases: one async handler per command, and the ports they need."""
