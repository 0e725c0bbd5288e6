"""Pure encoders: snapshots in, bytes or messages out. No clock, environment or globals."""
