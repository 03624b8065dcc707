"""The product service's domain: products, stock and reservations, free of I/O."""
