"""Ray: an embedded runtime or a cluster, per-series fan-out and search."""
