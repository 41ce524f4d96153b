"""forecaster: daily closing-price forecasts with stacked LSTM, GRU and SimpleRNN.

Importing the package is cheap: TensorFlow, scikit-learn and yfinance are
imported only by the functions that need them, so forecasting with the NumPy
engine never loads TensorFlow.
"""

from forecaster.errors import BundleError, ForecasterError, UnsupportedModelError

__all__ = ["BundleError", "ForecasterError", "UnsupportedModelError"]
__version__ = "0.1.0"
