"""Whole runs over the API: train, backtest, predict."""
