"""The bridge process: the MQTT 5 wire codec and connection, which devices exist, per-message
ingest, and the runner that wires them together."""
