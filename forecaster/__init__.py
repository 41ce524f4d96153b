"""forecaster: daily closing-price forecasts with stacked LSTM, GRU and SimpleRNN.

    import forecaster as fc
    model = fc.Forecaster(cell="gru").fit(fc.read_prices("data/AAPL.csv"))

Importing the package is cheap: pandas, TensorFlow, scikit-learn and yfinance
are imported only by the functions that need them, so forecasting with the
NumPy engine (`fc.load(path).forecast(n)`) never loads TensorFlow.

Importing it also loads yfinance's HTTP library in isolation from
TensorFlow's libcurl (see forecaster.httpstack), so downloads work whichever
of the two a program imports first; and it keeps TensorFlow from warning
about "retracing" when a process builds many engines (forecaster.quiet).
"""

from forecaster.errors import BundleError, ForecasterError, UnsupportedModelError
from forecaster.httpstack import isolate_curl_cffi
from forecaster.quiet import quiet_retracing
from forecaster.version import __version__

isolate_curl_cffi()
quiet_retracing()  # many engines in one process: no retracing warning per engine

__all__ = [
    "__version__",
    "BundleError",
    "Forecaster",
    "ForecasterError",
    "UnsupportedModelError",
    "load",
    "read_prices",
]

_API = {"Forecaster", "load", "read_prices", "settings_from_keywords"}


def __getattr__(name):
    """The API (forecaster.api) is imported on first use, keeping `import` cheap."""
    if name in _API:
        from forecaster import api

        return getattr(api, name)
    raise AttributeError(f"module 'forecaster' has no attribute {name!r}")
