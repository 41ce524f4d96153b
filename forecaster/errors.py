"""The project's own error type: a ValueError whose message is meant for people."""


class ForecasterError(ValueError):
    """Bad input or a failed step, with a message that says what to do.

    The message names what was wrong and the value received; the scripts print
    it as one line on stderr and exit non-zero, without a traceback.
    """


class BundleError(ForecasterError):
    """A saved-model bundle that is missing, damaged or incompatible."""


class UnsupportedModelError(ForecasterError):
    """A model with a layer the NumPy reference engine does not implement."""
