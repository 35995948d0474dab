"""The model server: routing, batching, metrics."""
