"""Setting up real nodes: `pilothouse node check` now, `node join` later."""
