"""The accounts the service acts for: the matcher, and (on the development chain) the providers'
and buyers' agents whose keys the deployment hands out. At scale each provider runs its own agent
with its own key; the code is the same, only the keys it holds differ."""

from __future__ import annotations

from eth_account import Account
from web3 import Web3

from suanwang.chain.deployment import DEV_CHAIN_ID, Deployment
from suanwang.chain.errors import ErrorDecoder
from suanwang.chain.market import TxSender
from suanwang.errors import InputError
from suanwang.roles import Role


class Agents:
    def __init__(self, w3: Web3, deployment: Deployment, decoder: ErrorDecoder, matcher_key: str | None = None) -> None:
        self._senders: dict[str, TxSender] = {}
        keys = [a.private_key for a in deployment.accounts if a.private_key and deployment.chain_id == DEV_CHAIN_ID]
        if matcher_key:
            keys.append(matcher_key)
        for key in keys:
            assert key is not None
            sender = TxSender(w3, Account.from_key(key), decoder)
            self._senders[sender.address.lower()] = sender
        matcher = matcher_key and Account.from_key(matcher_key).address
        if not matcher:
            matcher = next((a.address for a in deployment.accounts if a.roles & Role.MATCHER and a.private_key), None)
        if not matcher:
            raise InputError(
                "no matcher key: set SUANWANG_MATCHER_KEY (a MATCHER member's private key)", field="matcher_key"
            )
        self.matcher = self._senders[matcher.lower()]

    @property
    def addresses(self) -> list[str]:
        """The checksummed addresses whose keys the service holds (as deals and nodes store them)."""
        return [sender.address for sender in self._senders.values()]

    def for_address(self, address: str) -> TxSender | None:
        """The sender for `address` when the service holds its key, else None."""
        return self._senders.get(address.lower())
