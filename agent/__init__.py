"""The pilothouse node agent. It imports nothing from `control` or `console`."""
