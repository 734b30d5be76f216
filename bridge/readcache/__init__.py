"""Kept answers to repeated reads, and the per-device data versions that tell a process when
another one changed the data."""
