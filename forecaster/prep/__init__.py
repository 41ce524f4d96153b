"""Preparing series for a network: features, covariates, splits, scalers, windows."""
