"""Forecasts past the last price: dates, bands and distribution quantiles."""
