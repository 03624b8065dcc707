"""Conversions between the product API's protobuf messages and the domain, by aggregate."""
