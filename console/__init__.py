"""The operator's side: the `pilothouse` CLI and the Textual console."""
