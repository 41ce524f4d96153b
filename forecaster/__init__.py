"""forecaster: daily closing-price forecasts with stacked LSTM, GRU and SimpleRNN.

Importing the package is cheap: TensorFlow, scikit-learn and yfinance are
imported only by the functions that need them, so forecasting with the NumPy
engine never loads TensorFlow.

Importing it also loads yfinance's HTTP library in isolation from
TensorFlow's libcurl (see forecaster.httpstack), so downloads work whichever
of the two a program imports first.
"""

from forecaster.errors import BundleError, ForecasterError, UnsupportedModelError
from forecaster.httpstack import isolate_curl_cffi

isolate_curl_cffi()

__all__ = ["BundleError", "ForecasterError", "UnsupportedModelError"]
__version__ = "0.1.0"
