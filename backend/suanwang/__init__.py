"""Suanwang: a compute-network marketplace (算网).

Pure domain packages: ``compute``, ``network``, ``matching``.
I/O packages: ``chain``, ``storage``, ``content``, ``scheduling``, ``network.dataplane``, ``api``.
"""

import contextlib
import sys

with contextlib.suppress(ImportError):  # brownie's environment has no py_ecc, and so no raised limit
    import py_ecc  # noqa: F401  (imported first for its side effect, undone below)

__version__ = "0.1.0"

# py_ecc (imported by eth-account) raises the interpreter's recursion limit to 100,000 for its pairing
# code, which Suanwang never runs. With that limit the C JSON decoder overflows the C stack on a document
# nested about 100,000 deep and the process dies (SIGSEGV) instead of raising RecursionError; any request
# body or sealed document could do it. Python's own default is restored.
RECURSION_LIMIT = 1000
sys.setrecursionlimit(RECURSION_LIMIT)
