"""The pilothouse control plane: objects, store, API server, and (later) scheduler and controllers.

This package is headless: it never imports textual.
"""
