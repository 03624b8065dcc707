"""The chassis every marketplace service shares: settings, server, interceptors and auth."""
