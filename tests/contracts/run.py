"""Runs the brownie contract tests: `.venv-brownie/bin/python tests/contracts/run.py [pytest args]`.

Why not `brownie test`: brownie 1.22.2 ships `brownie/_config.py` compiled with mypyc, and its
`_recursive_update` then rejects the project's `networks.development.cmd_settings` (the default
config holds None there): "TypeError: dict object expected; got None". The pure-Python original
tolerated it. We give the default an empty dict before the plugin merges the project config, then
hand over to pytest, whose brownie plugin (entry point pytest-brownie) does the rest.
"""

import sys

import pytest
from brownie._config import CONFIG

_dev = CONFIG.settings["networks"]["development"]
if _dev.get("cmd_settings") is None:
    CONFIG.settings._unlock()
    _dev["cmd_settings"] = {}
    CONFIG.settings._lock()

args = sys.argv[1:]
if not any(a.startswith("tests/") for a in args):
    args = ["tests/contracts", *args]
sys.exit(pytest.main(args))
