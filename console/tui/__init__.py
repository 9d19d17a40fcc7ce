"""The operator's console: a keyboard-driven Textual app over the API client."""
