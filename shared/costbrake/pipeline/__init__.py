"""The event pipeline: consumers of the calls table's stream and the scheduled jobs."""
