"""In-memory fakes of the services' ports, for unit tests."""
