"""The order service: checkout, payment and the order timeline."""
