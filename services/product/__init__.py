"""The product service: catalog, search and inventory reservations of the marketplace."""
