"""Batch clearing: a set of orders matched together.

Objective, lexicographic: first the most orders matched, then the least total cost, where an
order's cost on a node is its bill (cost rate x duration) plus, when
``latency_cost_per_ms_hour`` > 0, a network-distance charge of that many token base units
per millisecond of access-point-to-node latency per hour. Each order may only go to its K
cheapest feasible nodes (``k``, default 8): every filter of the engine's profile is applied
first, so no order can land on a node a filter rejects.

Solvers:

* ``cp-sat`` (exact, OR-Tools): one boolean per (order, candidate node), per-node CPU and memory
  knapsacks, and per-GPU packing of fractional shares and whole GPUs, so any solution is
  feasible as placed. Solved twice (most orders, then least cost at that count, costs in units of
  10^-9 of the largest), warm-started from the best greedy answer; optimal within the K
  candidates unless the time limit stops it (``optimal`` says). Used when the model has at most
  ``exact_limit`` variables.
* ``greedy`` (large batches): the better of two feasible answers made on the exact state, the
  candidate generation's own claims (``greedy-claims``: signature by signature, each order its
  cheapest candidate with room) and the greedy pass in batch order (``greedy``).

A node's room is several resources at once (CPU, memory and each GPU's free share), so no count
of "slots" per node describes it: a min-cost flow whose node capacities are such counts is a
relaxation, and read as an answer it overfills nodes (an earlier version did, and lost ~1,000
matches at 20,000 x 5,000 in repairing them). What a relaxation is good for is a bound: every
result carries ``lp_bound``, a lower bound on the cost of matching that many orders within the
candidates (the Lagrangian dual of the LP that keeps each node's CPU, memory and GPU total within
its free capacity), so ``total_cost / lp_bound - 1`` bounds how far the answer is from optimal.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from ortools.sat.python import cp_model

from suanwang.compute.units import GPU_MILLI_PER_GPU
from suanwang.errors import InputError
from suanwang.matching.model import Order, Placement, Unplaced, validate_order

if TYPE_CHECKING:
    from suanwang.matching.cluster import BoolArray, FloatArray, IntArray
    from suanwang.matching.engine import Engine

DEFAULT_K = 8
COST_LEVELS = 1_000_000_000  # CP-SAT's integer costs: the largest candidate cost is this many units
LAGRANGE_STEPS = 1000  # at most this many subgradient steps of the lower bound (the step halves after 40 without gain)
DEFAULT_PASSES = 8  # at most this many candidate generations for an order whose candidates block-mates took
BLOCK_ORDERS = 128  # orders per block of candidate generation (smaller: fewer collisions, more overhead)


@dataclass(frozen=True)
class Candidates:
    """Per order: candidate node indices, cheapest first, and the cost on each; ``claims`` the
    tentative greedy assignment made while generating them ({order: (node, gpus)})."""

    nodes: list[IntArray]
    costs: list[FloatArray]
    claims: dict[int, tuple[int, tuple[int, ...]]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    placements: list[Placement]
    unplaced: list[Unplaced]
    total_cost: float
    solver: str
    k: int
    optimal: bool
    greedy_matched: int
    greedy_cost: float
    seconds: float
    explain_seconds: float
    greedy_claims_matched: int = 0
    greedy_claims_cost: float = 0.0
    lp_bound: float | None = None  # lower bound on the cost of matching `matched` orders (None: not computed)

    @property
    def lp_bound_gap(self) -> float | None:
        """How much the answer's cost may exceed the optimum at its count, at most (0.01 = 1%)."""
        if self.lp_bound is None or self.lp_bound <= 0:
            return None
        return self.total_cost / self.lp_bound - 1.0

    @property
    def matched(self) -> int:
        return len(self.placements)


# ---------------------------------------------------------------------- candidates
def _signature(order: Order) -> tuple[object, ...]:
    return (order.cpu_milli, order.memory_mib, order.num_gpu, order.gpu_share, order.gpu_models, int(order.min_tier))


def _penalties(engine: Engine, orders: Sequence[Order], latency_cost_per_ms_hour: float) -> tuple[FloatArray, IntArray]:
    """Per distinct network SLA (access point, latency cap, bandwidth floor): a row over all nodes of
    the network-distance cost per hour (``inf`` where the SLA fails); and each order's row."""
    keys: dict[tuple[int | None, float | None, float | None], int] = {}
    row_of = np.empty(len(orders), dtype=np.int64)
    for i, o in enumerate(orders):
        key = (o.access_point, o.max_latency_ms, o.min_bandwidth_gbps)
        row_of[i] = keys.setdefault(key, len(keys))
    rows = np.zeros((len(keys), engine.cluster.size))
    for (ap, max_lat, min_bw), r in keys.items():
        if ap is None:
            continue
        latency, bandwidth = engine.routes(ap)
        finite = np.isfinite(latency)
        if latency_cost_per_ms_hour:
            rows[r] = latency_cost_per_ms_hour * np.where(finite, latency, 0.0)
        bad = (latency > max_lat) if max_lat is not None else np.zeros(latency.size, dtype=bool)
        if min_bw is not None:
            bad |= bandwidth < min_bw
        if max_lat is not None or min_bw is not None:
            bad |= ~finite
        rows[r, bad] = np.inf
    return rows, row_of


def _room(scratch: _Scratch, order: Order, cols: IntArray) -> BoolArray:
    """Which of ``cols`` still have room for the order on the scratch state."""
    ok: BoolArray = (scratch.cpu[cols] >= order.cpu_milli) & (scratch.mem[cols] >= order.memory_mib)
    if order.num_gpu:
        gpus = scratch.gpu[cols]
        if order.gpu_share >= GPU_MILLI_PER_GPU:
            ok &= (gpus == GPU_MILLI_PER_GPU).sum(axis=1) >= order.num_gpu
        else:
            ok &= gpus.max(axis=1) >= order.gpu_share
    return ok


def candidates(
    engine: Engine,
    orders: Sequence[Order],
    k: int,
    latency_cost_per_ms_hour: float = 0.0,
    *,
    passes: int = DEFAULT_PASSES,
    block: int = BLOCK_ORDERS,
) -> Candidates:
    """Each order's K cheapest nodes that pass every filter and still have room for it, after the
    tentative claims of the orders generated before it (diversified candidates).

    Orders are taken by resource signature, in blocks of ``block``. Each block's candidates come
    from the nodes that still have room on a scratch copy of the state; then each of its orders
    tentatively claims its cheapest candidate with room (a greedy pass), so later blocks look past
    nodes already spoken for instead of all naming the same few cheapest ones. An order whose
    candidates were all claimed by its block-mates is generated again, up to ``passes`` times in
    all (stopping early when a pass claims nothing). When K covers every node a signature may use,
    no claim narrows them (every feasible node is a candidate, so the exact solver's optimum is the
    true one). The claims themselves are a
    feasible assignment, returned as ``claims``.

    Ranking uses float32 costs per hour (the order's duration does not change its ranking);
    the costs returned are float64 bills of the chosen candidates.
    """
    groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
    for i, order in enumerate(orders):
        groups[_signature(order)].append(i)
    penalty, penalty_row = _penalties(engine, orders, latency_cost_per_ms_hour)
    penalty32 = penalty.astype(np.float32)
    caps = np.array([np.inf if o.max_price_per_hour is None else o.max_price_per_hour + 0.5 for o in orders])
    hours = np.array([o.duration_s / 3600.0 for o in orders])
    scratch = _Scratch(engine)
    claims: dict[int, tuple[int, tuple[int, ...]]] = {}
    out_nodes: list[IntArray] = [np.zeros(0, dtype=np.int64)] * len(orders)
    out_costs: list[FloatArray] = [np.zeros(0)] * len(orders)
    for members in groups.values():
        # Filters that depend only on the signature run once, through the engine's own plugins.
        representative = dataclasses.replace(
            orders[members[0]],
            access_point=None,
            max_latency_ms=None,
            min_bandwidth_gbps=None,
            max_price_per_hour=None,
        )
        static = engine.feasible(representative)
        if static.size == 0:
            continue
        rate_all = engine.cost_rates(representative)
        contended = k < static.size
        queue = members
        for _ in range(passes):
            retry: list[int] = []
            for start in range(0, len(queue), block):
                rows = np.array(queue[start : start + block])
                cols = static[_room(scratch, representative, static)] if contended else static
                if cols.size == 0:
                    break
                rate = rate_all[cols]
                cost = penalty32[np.ix_(penalty_row[rows], cols)]
                cost += rate.astype(np.float32)
                for cap in np.unique(caps[rows]):
                    if np.isfinite(cap) and (over := rate >= cap).any():
                        cost[np.ix_(np.flatnonzero(caps[rows] == cap), np.flatnonzero(over))] = np.inf
                kk = min(k, cols.size)
                part = (
                    np.argpartition(cost, kk - 1, axis=1)[:, :kk]
                    if kk < cols.size
                    else np.broadcast_to(np.arange(cols.size), (rows.size, cols.size))
                )
                ranked = np.take_along_axis(cost, part, axis=1)
                part = np.take_along_axis(part, np.argsort(ranked, axis=1, kind="stable"), axis=1)
                for r, i in enumerate(rows.tolist()):
                    chosen = part[r][np.isfinite(cost[r, part[r]])]
                    nodes = cols[chosen]
                    out_nodes[i] = nodes
                    out_costs[i] = (rate[chosen] + penalty[penalty_row[i], nodes]) * hours[i]
                    if not contended:
                        continue
                    for n in nodes.tolist():
                        gpus = scratch.take(orders[i], n)
                        if gpus is not None:
                            claims[i] = (n, gpus)
                            break
                    else:
                        if nodes.size:
                            retry.append(i)
            if len(retry) == len(queue):  # no order of this pass found room: more passes cannot help
                break
            queue = retry
            if not queue:
                break
    return Candidates(out_nodes, out_costs, claims)


# ---------------------------------------------------------------------- exact fit on a scratch state
class _Scratch:
    """A copy of the cluster's free resources, to try packings without touching the engine."""

    def __init__(self, engine: Engine) -> None:
        c = engine.cluster
        self.cpu = c.cpu_free.copy()
        self.mem = c.mem_free.copy()
        self.gpu = c.gpu_free.copy()
        self.count = c.gpu_count

    def take(self, order: Order, n: int) -> tuple[int, ...] | None:
        if self.cpu[n] < order.cpu_milli or self.mem[n] < order.memory_mib:
            return None
        gpus: tuple[int, ...] = ()
        if order.num_gpu:
            share = order.gpu_share
            row = self.gpu[n, : self.count[n]]
            usable = sorted((int(free), g) for g, free in enumerate(row) if free >= share)
            if len(usable) < order.num_gpu:
                return None
            gpus = tuple(sorted(g for _, g in usable[: order.num_gpu]))
            for g in gpus:
                self.gpu[n, g] -= share
        self.cpu[n] -= order.cpu_milli
        self.mem[n] -= order.memory_mib
        return gpus


def greedy(engine: Engine, orders: Sequence[Order], cands: Candidates) -> dict[int, tuple[int, tuple[int, ...]]]:
    """Each order in turn to its cheapest candidate that still fits: {order: (node, gpus)}."""
    scratch = _Scratch(engine)
    chosen: dict[int, tuple[int, tuple[int, ...]]] = {}
    for i, order in enumerate(orders):
        for n in cands.nodes[i]:
            gpus = scratch.take(order, int(n))
            if gpus is not None:
                chosen[i] = (int(n), gpus)
                break
    return chosen


def _cost_of(assignment: dict[int, tuple[int, tuple[int, ...]]], cands: Candidates) -> float:
    total = 0.0
    for i, (n, _) in assignment.items():
        total += float(cands.costs[i][int(np.flatnonzero(cands.nodes[i] == n)[0])])
    return total


# ---------------------------------------------------------------------- CP-SAT (exact)
def _variable_count(engine: Engine, orders: Sequence[Order], cands: Candidates) -> int:
    gpus = engine.cluster.gpu_count
    total = 0
    for i, order in enumerate(orders):
        per = cands.nodes[i].size
        total += per
        if order.num_gpu == 1 and order.gpu_share < GPU_MILLI_PER_GPU:
            total += int(gpus[cands.nodes[i]].sum())
    return total


def _solve_cp_sat(
    engine: Engine,
    orders: Sequence[Order],
    cands: Candidates,
    hint: dict[int, tuple[int, tuple[int, ...]]],
    time_limit_s: float,
    match_count: int | None,
) -> tuple[dict[int, tuple[int, tuple[int, ...]]], bool]:
    c = engine.cluster
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    by_node: dict[int, list[int]] = defaultdict(list)
    for i in range(len(orders)):
        for n in cands.nodes[i]:
            x[i, int(n)] = model.new_bool_var(f"x{i}_{n}")
            by_node[int(n)].append(i)
        if cands.nodes[i].size:
            model.add_at_most_one(x[i, int(n)] for n in cands.nodes[i])
    z: dict[tuple[int, int, int], cp_model.IntVar] = {}
    whole: dict[tuple[int, int], cp_model.IntVar] = {}
    for n, members in by_node.items():
        model.add(sum(orders[i].cpu_milli * x[i, n] for i in members) <= int(c.cpu_free[n]))
        model.add(sum(orders[i].memory_mib * x[i, n] for i in members) <= int(c.mem_free[n]))
        gpu_orders = [i for i in members if orders[i].num_gpu]
        if not gpu_orders:
            continue
        free = [int(v) for v in c.gpu_free[n, : c.gpu_count[n]]]
        load: dict[int, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
        whole_orders = [i for i in gpu_orders if orders[i].gpu_share >= GPU_MILLI_PER_GPU]
        if whole_orders:
            for g, f in enumerate(free):
                if f == GPU_MILLI_PER_GPU:
                    whole[n, g] = model.new_bool_var(f"w{n}_{g}")
                    load[g].append((GPU_MILLI_PER_GPU, whole[n, g]))
            model.add(
                sum(orders[i].num_gpu * x[i, n] for i in whole_orders)
                == sum(whole[n, g] for g in range(len(free)) if (n, g) in whole)
            )
        for i in gpu_orders:
            if orders[i].gpu_share >= GPU_MILLI_PER_GPU:
                continue
            share = orders[i].gpu_share
            options = []
            for g, f in enumerate(free):
                if f >= share:
                    z[i, n, g] = model.new_bool_var(f"z{i}_{n}_{g}")
                    options.append(z[i, n, g])
                    load[g].append((share, z[i, n, g]))
            model.add(sum(options) == x[i, n])
        for g, terms in load.items():
            model.add(sum(coef * var for coef, var in terms) <= free[g])

    for i, (n, _) in hint.items():
        model.add_hint(x[i, n], 1)
    matched = sum(x.values())
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 2
    solver.parameters.max_time_in_seconds = time_limit_s
    optimal = True
    if match_count is None:
        model.maximize(matched)
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return hint, False
        optimal = status == cp_model.OPTIMAL
        best = round(solver.objective_value)
        model.clear_hints()
        for var in x.values():
            model.add_hint(var, solver.value(var))
        model.clear_objective()
    else:
        best = match_count
    model.add(matched == best)
    max_cost = max((float(v.max()) for v in cands.costs if v.size), default=1.0) or 1.0
    scale = COST_LEVELS / max_cost
    model.minimize(
        sum(
            round(float(cands.costs[i][j]) * scale) * x[i, int(n)]
            for i in range(len(orders))
            for j, n in enumerate(cands.nodes[i])
        )
    )
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if match_count is not None:
            raise InputError(f"cannot match exactly {match_count} orders within the candidates", field="match_count")
        return hint, False
    optimal = optimal and status == cp_model.OPTIMAL
    result: dict[int, tuple[int, tuple[int, ...]]] = {}
    for (i, n), var in x.items():
        if solver.value(var):
            order = orders[i]
            if not order.num_gpu:
                gpus: tuple[int, ...] = ()
            elif order.gpu_share >= GPU_MILLI_PER_GPU:
                gpus = ()  # whole GPUs are dealt out per node below
            else:
                gpus = tuple(g for g in range(int(c.gpu_count[n])) if (i, n, g) in z and solver.value(z[i, n, g]))
            result[i] = (n, gpus)
    # Deal the whole GPUs the solver set aside on each node to that node's whole-GPU orders.
    pool: dict[int, list[int]] = defaultdict(list)
    for (n, g), var in whole.items():
        if solver.value(var):
            pool[n].append(g)
    for i, (n, _) in sorted(result.items()):
        if orders[i].num_gpu and orders[i].gpu_share >= GPU_MILLI_PER_GPU:
            taken, pool[n] = pool[n][: orders[i].num_gpu], pool[n][orders[i].num_gpu :]
            result[i] = (n, tuple(taken))
    return result, optimal


# ---------------------------------------------------------------------- lower bound
def lagrangian_bound(
    engine: Engine, orders: Sequence[Order], cands: Candidates, count: int, upper: float, steps: int = LAGRANGE_STEPS
) -> float:
    """A lower bound on the cost of matching ``count`` orders within the candidates.

    Relax each node's CPU, memory and total free GPU share with prices (Lagrange multipliers);
    for any prices, the ``count`` cheapest orders at their cheapest priced candidate, less the
    priced capacity, bound the cost from below (weak duality). Subgradient steps raise the prices
    towards the LP's optimum (Polyak steps towards ``upper``, a known feasible cost).
    """
    rows = [i for i in range(len(orders)) if cands.nodes[i].size]
    if count <= 0 or len(rows) < count:
        return 0.0
    lengths = np.array([cands.nodes[i].size for i in rows])
    arc_order = np.repeat(np.arange(len(rows)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    arc_node = np.concatenate([cands.nodes[i] for i in rows])
    scale = max(float(np.concatenate([cands.costs[i] for i in rows]).max()), 1.0)
    arc_cost = np.concatenate([cands.costs[i] for i in rows]) / scale
    c = engine.cluster
    used, slot = np.unique(arc_node, return_inverse=True)
    # Demand and capacity per resource, each over the node's capacity (multipliers of one scale).
    need = np.array([[o.cpu_milli, o.memory_mib, o.gpu_demand_milli] for o in (orders[i] for i in rows)], dtype=float)
    cap = np.stack([c.cpu_free[used], c.mem_free[used], c.gpu_free_total[used]], axis=1).astype(float)
    unit = np.maximum(np.stack([c.cpu_cap[used], c.mem_cap[used], c.gpu_cap_milli[used]], axis=1), 1).astype(float)
    arc_need = need[arc_order] / unit[slot]
    cap /= unit
    price = np.zeros_like(cap)
    best, theta, target, stalled = 0.0, 2.0, upper / scale, 0
    for _ in range(steps):
        reduced = arc_cost + (arc_need * price[slot]).sum(axis=1)
        cheapest = np.minimum.reduceat(reduced, starts)
        chosen = np.argpartition(cheapest, count - 1)[:count]
        value = float(cheapest[chosen].sum() - (price * cap).sum())
        if value > best * (1 + 1e-6):
            best, stalled = value, 0
        else:
            best, stalled = max(best, value), stalled + 1
            if stalled >= 40:
                theta, stalled = theta / 2, 0
        # Each chosen order's cheapest arc, and what those arcs ask of each node.
        pick = np.zeros(len(rows), dtype=bool)
        pick[chosen] = True
        first = np.flatnonzero(reduced == cheapest[arc_order])
        first = first[np.unique(arc_order[first], return_index=True)[1]]
        arcs = first[pick[arc_order[first]]]
        load = np.zeros_like(cap)
        np.add.at(load, slot[arcs], arc_need[arcs])
        gradient = load - cap
        gradient[(price <= 0) & (gradient < 0)] = 0.0
        norm = float((gradient**2).sum())
        if norm == 0 or theta < 1e-4:
            break
        price = np.maximum(0.0, price + theta * max(target - value, 1e-9 * abs(target)) / norm * gradient)
    return best * scale


# ---------------------------------------------------------------------- entry point
def clear_batch(
    engine: Engine,
    orders: Sequence[Order],
    *,
    k: int = DEFAULT_K,
    latency_cost_per_ms_hour: float = 0.0,
    solver: str = "auto",
    exact_limit: int = 20_000,
    time_limit_s: float = 10.0,
    match_count: int | None = None,
    bound: bool = True,
) -> BatchResult:
    """Clear ``orders`` together on the engine's cluster and commit the placements to it.

    ``seconds`` in the result covers the clearing (candidates, solver, commit);
    ``explain_seconds`` the explanations of the unmatched orders, made on the state after it.

    ``solver`` is "auto" (CP-SAT when the model has at most ``exact_limit`` variables, else
    greedy), "cp-sat" or "greedy". ``match_count`` (CP-SAT only) fixes how many orders are
    matched, to compare costs at equal count. ``lp_bound`` is computed unless ``bound=False``
    (it is not counted in ``seconds``).
    """
    started = time.perf_counter()
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}", field="k")
    ids = [o.id for o in orders]
    if len(set(ids)) != len(ids):
        raise InputError("order ids in a batch must be unique", field="orders")
    for order in orders:
        validate_order(order, engine.catalog)
        if order.id in engine.placements:
            raise InputError(f"order {order.id} is already placed", field=f"{order.id}:id")
    cands = candidates(engine, orders, k, latency_cost_per_ms_hour)
    base = greedy(engine, orders, cands)
    base_cost = _cost_of(base, cands)
    # The claims made while generating candidates are a second greedy answer (in signature order).
    fallback, fallback_cost, fallback_name = base, base_cost, "greedy"
    claims_cost = _cost_of(cands.claims, cands)
    if (len(cands.claims), -claims_cost) > (len(base), -base_cost):
        fallback, fallback_cost, fallback_name = cands.claims, claims_cost, "greedy-claims"
    if solver == "auto":
        solver = "cp-sat" if _variable_count(engine, orders, cands) <= exact_limit else "greedy"
    optimal = False
    if solver == "greedy":
        if match_count is not None:
            raise InputError("match_count needs the cp-sat solver", field="match_count")
        chosen, solver = fallback, fallback_name
    elif solver == "cp-sat":
        chosen, optimal = _solve_cp_sat(engine, orders, cands, fallback, time_limit_s, match_count)
    else:
        raise InputError(f"unknown solver {solver!r}; use auto, cp-sat or greedy", field="solver")
    cost = _cost_of(chosen, cands)
    if match_count is None and (len(chosen), -cost) < (len(fallback), -fallback_cost):
        chosen, cost, solver, optimal = fallback, fallback_cost, fallback_name, False
    solved = time.perf_counter()
    # The bound is read on the state before the commit, and not timed as part of the clearing.
    lp_bound = lagrangian_bound(engine, orders, cands, len(chosen), cost) if bound else None
    bounded = time.perf_counter()

    placements: list[Placement] = []
    unplaced: list[Unplaced] = []
    for i, order in enumerate(orders):
        if i in chosen:
            n, gpus = chosen[i]
            placements.append(engine.commit(order, n, gpus))
    cleared = time.perf_counter()
    for i, order in enumerate(orders):
        if i not in chosen:
            unplaced.append(Unplaced(order.id, engine.explain(order).outbid(int(cands.nodes[i].size))))
    return BatchResult(
        placements,
        unplaced,
        cost,
        solver,
        k,
        optimal,
        len(base),
        base_cost,
        (solved - started) + (cleared - bounded),
        time.perf_counter() - cleared,
        len(cands.claims),
        claims_cost,
        lp_bound,
    )
