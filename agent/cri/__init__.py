"""CRI runtime.v1 gRPC: the project's proto subset, generated stubs, and an async client."""
