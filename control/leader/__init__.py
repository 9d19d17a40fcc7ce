"""Leader election among control planes on one store: which one runs the
scheduler, the controllers and the node links."""
