"""A small legacy service: scheduled jobs that fetch per-item data over HTTP, one item at a time."""
