"""The durable write path: the batching writer, and the sink that falls back to an on-disk
spool while InfluxDB is away."""
