"""The keys one process acts with, as transaction senders by address.

Each party holds its own key in its own process: the matcher service holds the matcher's, a provider
agent its seller's, an operator agent its operator's. Only on the development chain may the service
also act for the demo sellers and buyers whose keys the deployment record hands out (`development`),
which lets one process run a whole market for tests."""

from __future__ import annotations

from collections.abc import Iterable

from eth_account import Account
from web3 import Web3

from suanwang.chain.deployment import DEV_CHAIN_ID, Deployment
from suanwang.chain.errors import ErrorDecoder
from suanwang.chain.market import TxSender
from suanwang.errors import InputError
from suanwang.roles import Role


class Keyring:
    matcher: TxSender | None = None

    def __init__(self, w3: Web3, keys: Iterable[str], decoder: ErrorDecoder) -> None:
        self._senders: dict[str, TxSender] = {}
        for key in keys:
            sender = TxSender(w3, Account.from_key(key), decoder)
            self._senders[sender.address.lower()] = sender

    @classmethod
    def for_service(
        cls,
        w3: Web3,
        deployment: Deployment,
        decoder: ErrorDecoder,
        matcher_key: str | None = None,
        development: bool = False,
    ) -> Keyring:
        """The matcher's key (`matcher_key`, else the deployment's demo matcher on the development chain),
        and with `development` on the development chain every demo account's key too."""
        dev = deployment.chain_id == DEV_CHAIN_ID
        keys = [a.private_key for a in deployment.accounts if a.private_key and dev and development]
        if not matcher_key and dev:
            matcher_key = next(
                (a.private_key for a in deployment.accounts if a.roles & Role.MATCHER and a.private_key), None
            )
        if not matcher_key:
            raise InputError(
                "no matcher key: set SUANWANG_MATCHER_KEY (a MATCHER member's private key)", field="matcher_key"
            )
        ring = cls(w3, [*(k for k in keys if k), matcher_key], decoder)
        ring.matcher = ring._senders[Account.from_key(matcher_key).address.lower()]
        return ring

    @property
    def addresses(self) -> list[str]:
        """The checksummed addresses whose keys this process holds."""
        return [sender.address for sender in self._senders.values()]

    def for_address(self, address: str) -> TxSender | None:
        """The sender for `address` when this process holds its key, else None."""
        return self._senders.get(address.lower())

    def matcher_sender(self) -> TxSender:
        if self.matcher is None:
            raise InputError("this process holds no matcher key", field="matcher_key")
        return self.matcher

    def only_or_matcher(self) -> TxSender:
        """The key for calls anyone may make (settle after the window, timeout): the matcher's in the
        service, the agent's own one in an agent."""
        if self.matcher is not None:
            return self.matcher
        (sender,) = self._senders.values()
        return sender


def address_of(key: str) -> str:
    return str(Web3.to_checksum_address(Account.from_key(key).address))
