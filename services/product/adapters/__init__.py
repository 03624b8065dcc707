"""The product service's adapters to MongoDB."""
