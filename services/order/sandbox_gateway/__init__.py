"""A FAKE card processor run as its own small HTTP service, for development and tests."""
