"""`brownie` with the development chain's port taken from SUANWANG_CHAIN_PORT.

brownie 1.22.2 cannot take the port from the project's brownie-config.yaml (merging
`networks.development.cmd_settings` crashes), and its network-config.yaml lives in the user's home
and says 8545, the port `make up` uses. This sets the port (and Anvil's settings for the demo) in
brownie's loaded configuration, then runs brownie's own command line unchanged. brownie attaches to
an Anvil already answering on that port, or starts one there."""

import os
import sys

from brownie._cli.__main__ import main
from brownie._config import CONFIG

DEV_SETTINGS = {"base_fee": 0, "chain_id": 31337, "accounts": 20, "gas_limit": 30_000_000}

development = CONFIG.networks["development"]
settings = dict(development.get("cmd_settings") or {})
settings.update(DEV_SETTINGS)
settings["port"] = int(os.environ.get("SUANWANG_CHAIN_PORT", "8546"))
development["cmd_settings"] = settings

if __name__ == "__main__":
    sys.argv[0] = "brownie"
    sys.exit(main())
