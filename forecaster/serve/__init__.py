"""`forecaster serve`: forecasts over HTTP from saved bundles, NumPy engine only."""
