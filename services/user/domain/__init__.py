"""The user service's domain: accounts, sessions and the rules they obey, free of I/O."""
