"""The operator's side: the `pilothouse` CLI and (later) the Textual console."""
