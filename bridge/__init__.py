"""devicedata's domain: data points, their validation, the InfluxDB store, the device
registry, the batching writer and the MQTT subscriber. The HTTP face lives in ``api``."""
