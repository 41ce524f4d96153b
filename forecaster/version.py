"""The version of forecaster, recorded in every bundle and shown by --version."""

__version__ = "0.2.0"
