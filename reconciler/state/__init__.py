"""The state: its model, the snapshot + journal store under a lock, durable writes."""
