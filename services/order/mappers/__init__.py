"""Translation between the order API's protobuf messages and the domain."""
