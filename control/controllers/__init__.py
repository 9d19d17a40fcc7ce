"""Controllers: small reconcilers fed by informers (list+watch caches) through work queues."""
