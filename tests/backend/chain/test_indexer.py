"""The indexer against a real Anvil chain with the real contracts: exactly once, reorgs, restarts,
and a replaced chain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hexbytes import HexBytes
from sqlalchemy import func, select

from suanwang.chain.gateway import connect, contracts
from suanwang.chain.indexer import ChainReplacedError, Indexer
from suanwang.chain.projections import indexed_seats
from suanwang.devstack import Anvil, free_port, genesis_time_file, rpc
from suanwang.roles import Role
from suanwang.storage.db import make_engine, make_sessionmaker
from suanwang.storage.models import Base, ChainCursor, Event, Node, TransitTariff
from tests.support.stack import Chain, node_spec


def make_indexer(chain: Chain, database_url: str, confirmations: int = 0) -> Indexer:
    settings = chain.settings(database_url, confirmations=confirmations)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    return Indexer(
        chain.w3,
        chain.deployment,
        contracts(chain.w3, chain.deployment, settings),
        sessions,
        confirmations=confirmations,
    )


def register_node(chain: Chain, **changes: object) -> int:
    seller = chain.account_with(Role.CLOUD)
    operator = chain.account_with(Role.OPERATOR)
    registry = chain.contract("NodeRegistry")
    chain.transact(seller, registry.functions.registerNode(node_spec(operator.address, **changes)))
    return int(registry.functions.nodeCount().call())


def counts(indexer: Indexer) -> tuple[int, int, set[int]]:
    with indexer.sessions() as s:
        events = s.scalar(select(func.count()).select_from(Event)) or 0
        distinct = (
            s.scalar(select(func.count()).select_from(select(Event.tx_hash, Event.log_index).distinct().subquery()))
            or 0
        )
        nodes = set(s.scalars(select(Node.node_id)))
    return events, distinct, nodes


def test_registered_node_is_indexed_with_its_spec(chain: Chain, database_url: str) -> None:
    node_id = register_node(chain, memoryMib=131_072, gpuCount=4, encryptionKey=bytes(range(32)))
    indexer = make_indexer(chain, database_url)
    indexer.sync_to_head()
    with indexer.sessions() as s:
        node = s.get(Node, node_id)
        assert node is not None
        assert (node.memory_mib, node.gpu_count, node.status) == (131_072, 4, "active")
        assert node.price_per_cu_hour == str(15 * 10**17)
        assert node.locator == "0xfc000000000100000000000000000000/48"
        assert node.encryption_key == "0x" + bytes(range(32)).hex()


def test_the_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)  # migrates to head
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_operator_seats_are_indexed_as_the_market_gives_them(chain: Chain, database_url: str) -> None:
    indexer = make_indexer(chain, database_url)
    indexer.sync_to_head()
    with indexer.sessions() as s:
        seats = indexed_seats(s)
    on_chain = chain.contract("Market").functions.transitOperators().call()
    assert list(seats.operators) == on_chain and chain.account_with(Role.OPERATOR).address in on_chain
    assert seats.seat_of(on_chain[-1]) == len(on_chain) - 1


def test_published_transit_tariffs_are_indexed_as_the_market_holds_them(chain: Chain, database_url: str) -> None:
    indexer = make_indexer(chain, database_url)
    indexer.sync_to_head()
    market = chain.contract("Market")
    with indexer.sessions() as s:
        indexed = {t.operator: int(t.per_gbps_hour) for t in s.scalars(select(TransitTariff))}
    # scripts/deploy.py publishes the marketplace's transit account's tariff (CERNET network team, 0.002 token)
    network_team = next(a.address for a in chain.deployment.accounts if a.name == "CERNET network team")
    assert indexed[network_team] == 2 * 10**15
    assert indexed == {op: int(market.functions.transitTariffOf(op).call()) for op in indexed}
    founder = chain.deployment.deployer
    chain.transact(chain.account_with(Role.OPERATOR), market.functions.setTransitTariff(7 * 10**15))
    indexer.sync_to_head()
    with indexer.sessions() as s:
        row = s.get(TransitTariff, founder)
        assert row is not None and int(row.per_gbps_hour) == 7 * 10**15


def test_each_log_is_stored_once_across_repeated_syncs_and_restarts(chain: Chain, database_url: str) -> None:
    register_node(chain)
    first = make_indexer(chain, database_url)
    first.sync_to_head()
    first.sync_to_head()
    before = counts(first)
    register_node(chain)
    restarted = make_indexer(chain, database_url)  # same database: resumes from its cursor
    restarted.sync_to_head()
    events, distinct, nodes = counts(restarted)
    assert events == distinct == before[0] + 1
    assert nodes == before[2] | {max(nodes)}


def test_reorg_within_confirmation_depth_is_never_indexed(chain: Chain, database_url: str) -> None:
    indexer = make_indexer(chain, database_url, confirmations=3)
    node_id = register_node(chain)
    indexer.sync_to_head()
    assert node_id not in counts(indexer)[2]  # not yet confirmed
    rpc(chain.anvil.url, "anvil_reorg", [1, []])  # replaces the registration's block with an empty one
    rpc(chain.anvil.url, "anvil_mine", ["0x5"])
    indexer.sync_to_head()
    events, distinct, nodes = counts(indexer)
    assert nodes == set()
    assert events == distinct
    with indexer.sessions() as s:
        assert s.scalars(select(Event).where(Event.name == "NodeRegistered")).all() == []
        assert s.scalars(select(Event).where(Event.name == "MemberAdmitted")).all()  # the rest was indexed


def test_reorg_deeper_than_confirmations_rolls_back_and_reindexes(chain: Chain, database_url: str) -> None:
    indexer = make_indexer(chain, database_url, confirmations=0)
    kept = register_node(chain)
    undone = register_node(chain)
    indexer.sync_to_head()
    assert {kept, undone} <= counts(indexer)[2]
    rpc(chain.anvil.url, "anvil_rollback", [1])  # the chain forgets the last block
    indexer.sync_to_head()
    assert undone not in counts(indexer)[2]
    assert kept in counts(indexer)[2]
    again = register_node(chain, memoryMib=65_536)  # the same id, now in a different block
    assert again == undone
    indexer.sync_to_head()
    events, distinct, _nodes = counts(indexer)
    assert events == distinct
    with indexer.sessions() as s:
        node = s.get(Node, again)
        assert node is not None and node.memory_mib == 65_536


def test_reorg_that_replaces_a_block_with_other_transactions_is_followed(chain: Chain, database_url: str) -> None:
    indexer = make_indexer(chain, database_url)
    node_id = register_node(chain)
    indexer.sync_to_head()
    rpc(chain.anvil.url, "anvil_reorg", [1, []])  # the registration's block is replaced by an empty one
    assert register_node(chain, tier=2) == node_id  # and a different registration takes its id
    indexer.sync_to_head()
    with indexer.sessions() as s:
        node = s.get(Node, node_id)
        assert node is not None and node.tier == 2
        assert len(s.scalars(select(Event).where(Event.name == "NodeRegistered")).all()) == node_id


def test_restart_of_anvil_from_saved_state_resumes_without_duplicates(
    chain: Chain, deployed_state: tuple[Path, Path], database_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "chain-state.json"
    shutil.copy(deployed_state[1], state)
    shutil.copy(genesis_time_file(deployed_state[1]), genesis_time_file(state))
    with Anvil(free_port(), state_file=state) as first:
        chain.anvil, chain.w3 = first, connect(first.url)
        register_node(chain)
        indexer = make_indexer(chain, database_url)
        indexer.sync_to_head()
        before = counts(indexer)
    for _restart in range(3):  # Anvil's genesis handling broke only from the second restart on
        with Anvil(free_port(), state_file=state) as again:  # the same chain, restarted
            chain.anvil, chain.w3 = again, connect(again.url)
            register_node(chain)
            resumed = make_indexer(chain, database_url)
            resumed.sync_to_head()
            events, distinct, nodes = counts(resumed)
    assert events == distinct == before[0] + 3
    assert len(nodes) == len(before[2]) + 3


def test_a_replaced_chain_is_refused(chain: Chain, database_url: str) -> None:
    indexer = make_indexer(chain, database_url)
    indexer.sync_to_head()
    with Anvil(free_port()) as other:  # a brand-new chain with the same chain id
        rpc(other.url, "anvil_mine", ["0x3"])
        chain.w3.provider.endpoint_uri = other.url  # type: ignore[attr-defined]
        with pytest.raises(ChainReplacedError, match="refusing to mix"):
            indexer.sync_once()


def test_an_ancestor_taken_from_a_fork_the_node_is_leaving_is_rolled_back_again(
    chain: Chain, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault campaign saw a Settled event from an undone block survive a deep reorg while the cursor's
    hash matched the chain. One way: the rollback's walk reads an older block's hash while the node still
    serves the old fork, takes it as the common ancestor, and the pass indexes on from it. The next block's
    parentHash then does not name the cursor's block: the indexer must not link them, and rolls back again."""
    indexer = make_indexer(chain, database_url)
    undone_first = register_node(chain)
    first_block = chain.w3.eth.block_number
    stale_hash = HexBytes(chain.w3.eth.get_block(first_block)["hash"]).to_0x_hex()
    register_node(chain)
    indexer.sync_to_head()
    rpc(chain.anvil.url, "anvil_reorg", [2, []])  # both registrations' blocks replaced by empty ones
    rpc(chain.anvil.url, "anvil_mine", ["0x1"])
    truthful = indexer._hash_at
    lies = iter([stale_hash])  # the walk's first look at the first block answers from the old fork

    def hash_at(number: int) -> str | None:
        return next(lies, truthful(number)) if number == first_block else truthful(number)

    monkeypatch.setattr(indexer, "_hash_at", hash_at)
    indexer.sync_to_head()
    with indexer.sessions() as s:
        assert s.scalars(select(Event).where(Event.name == "NodeRegistered")).all() == []
        assert s.get(Node, undone_first) is None
        cursor_hash = s.get(ChainCursor, 1).block_hash  # type: ignore[union-attr]
    assert cursor_hash == HexBytes(chain.w3.eth.get_block("latest")["hash"]).to_0x_hex()
