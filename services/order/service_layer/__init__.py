"""The order service's use cases, one async handler each, over ports it is given."""
