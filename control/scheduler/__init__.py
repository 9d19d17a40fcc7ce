"""The scheduler: queue, cache, filter and score plugins, and binding."""
