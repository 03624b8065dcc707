"""The order domain: orders, their lines, payments and status rules, free of I/O."""
