"""Usage: ingestion, metering, rollups, usage reads, the check, draw-down calls,
usage alerts."""
