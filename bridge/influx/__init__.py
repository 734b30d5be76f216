"""The only code that talks to InfluxDB: the storage schema (line protocol, rows back into
points), every InfluxQL statement, the store and its HTTP write client, and newest-first
reads over recent windows."""
