"""The command line: `forecaster`, `train.py` and `predict.py` parse here."""
