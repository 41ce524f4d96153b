"""The project's own error type: a ValueError whose message is meant for people."""

import errno
import os


class ForecasterError(ValueError):
    """Bad input or a failed step, with a message that says what to do.

    The message names what was wrong and the value received; the scripts print
    it as one line on stderr and exit non-zero, without a traceback.
    """


class BundleError(ForecasterError):
    """A saved-model bundle that is missing, damaged or incompatible."""


class UnsupportedModelError(ForecasterError):
    """A model with a layer the NumPy reference engine does not implement."""


WRITE_ADVICE = {
    errno.ENOSPC: "Free some disk space and run again",
    errno.EDQUOT: "Free some space within your disk quota and run again",
    errno.EFBIG: "The file exceeds the size limit for this process (ulimit -f)",
    errno.EROFS: "The file system is read-only: write somewhere else",
    errno.EACCES: "Check the permissions there, or write somewhere else",
    errno.EPERM: "Check the permissions there, or write somewhere else",
}


def write_error(err: OSError, what: str, path: str | os.PathLike) -> ForecasterError:
    """One line for a failed write: what could not be written, where, and why."""
    reason = err.strerror or str(err) or type(err).__name__
    code = errno.errorcode.get(err.errno or 0)
    why = f"{reason} ({code})" if code else reason
    advice = WRITE_ADVICE.get(err.errno, "Check the disk and the permissions there")
    return ForecasterError(
        f"Could not write the {what} {str(path)!r}: {why}. {advice}; nothing that "
        "was there before has changed."
    )
