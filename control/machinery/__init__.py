"""What the controllers, the scheduler and the node links share: informers
(a watched, indexed cache of one kind), the event recorder, and the work queue."""
