"""Scoring forecasts: scores, baselines, significance tests, intervals, backtests."""
