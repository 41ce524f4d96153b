"""Keep yfinance's HTTP stack (curl_cffi) working beside TensorFlow in one process.

curl_cffi's extension module carries its own build of libcurl, patched for
browser impersonation, and reaches it through the ordinary `curl_easy_*`
symbols. TensorFlow loads its own libcurl with global symbol visibility, so
once TensorFlow is imported, a curl_cffi loaded afterwards binds those calls
to TensorFlow's copy, which knows no impersonation: every yfinance request
then fails with "Impersonating chrome... is not supported" before it is sent.

`isolate_curl_cffi` loads curl_cffi's library first with RTLD_DEEPBIND, which
makes it resolve its own symbols before any global ones. Python's later import
of curl_cffi finds the library already loaded and uses it as it is. This runs
when `forecaster` is imported (it costs about a millisecond and imports no
Python package), so the order in which a program imports TensorFlow and
forecaster does not matter. Only a curl_cffi that was already imported after
TensorFlow stays broken; `http_stack_works` detects that, and the downloader
then runs in a child process that never imports TensorFlow.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import sys

IMPERSONATION_TARGET = "chrome"  # the browser family yfinance impersonates


def isolate_curl_cffi() -> bool:
    """Preload curl_cffi's libcurl with its own symbols first. True if it was done.

    Does nothing where it cannot matter or cannot work: curl_cffi already
    imported, not installed, or a platform without RTLD_DEEPBIND (macOS and
    Windows resolve symbols per library anyway).
    """
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    if not deepbind or "curl_cffi._wrapper" in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec("curl_cffi")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for path in glob.glob(os.path.join(folder, "_wrapper*.so")):
            try:
                ctypes.CDLL(path, mode=os.RTLD_NOW | deepbind)
            except OSError:
                return False
            return True
    return False


def http_stack_works() -> bool:
    """Whether curl_cffi in this process can impersonate a browser (no request sent).

    False when curl_cffi was bound to another libcurl (see the module
    docstring); True when it works or is not installed (then yfinance's
    own import error explains the problem better).
    """
    try:
        from curl_cffi import Curl
        from curl_cffi.requests import impersonate
    except ImportError:
        return True
    target = getattr(impersonate, "DEFAULT_CHROME", IMPERSONATION_TARGET)
    curl = Curl()
    try:
        return curl.impersonate(target) == 0
    finally:
        curl.close()
