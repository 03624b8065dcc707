"""What the order service talks to: PostgreSQL, the product service and the card processor."""
