"""The pilothouse control plane: objects, store, API server, scheduler, controllers and node links.

This package is headless: it never imports textual.
"""
