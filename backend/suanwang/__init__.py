"""Suanwang: a compute-network marketplace (算网).

Pure domain packages: ``compute``, ``network``, ``matching``.
I/O packages: ``chain``, ``storage``, ``content``, ``scheduling``, ``network.dataplane``, ``api``.
"""

__version__ = "0.1.0"
