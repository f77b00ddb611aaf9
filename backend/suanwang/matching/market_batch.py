"""Batch clearing for the marketplace mode: given each order's candidate nodes (cheapest first, with
their bill totals), choose which order goes where, most matched first, then least total billed.

CP-SAT (per-node, per-class knapsacks) solves it exactly within the candidates when the model is
small enough; otherwise, or when the solver finds nothing better, the greedy pass (each order in turn
to its cheapest candidate with room) stands. :meth:`MarketEngine.clear_batch` picks the candidates
and reserves the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ortools.sat.python import cp_model

if TYPE_CHECKING:
    from suanwang.matching.cluster import IntArray


@dataclass(frozen=True)
class BatchChoice:
    """{order position: candidate position} chosen, by which solver, whether proven optimal, and the
    greedy pass's own choice and bill total (the baseline the report compares with)."""

    chosen: dict[int, int]
    solver: str
    optimal: bool
    greedy: dict[int, int]
    greedy_total: int


def choose(
    free: IntArray,
    demands: Sequence[IntArray],
    cands: list[IntArray],
    costs: list[list[int]],
    *,
    exact_limit: int,
    time_limit_s: float,
) -> BatchChoice:
    """The assignment of orders to their candidate node indices ``cands`` (bill totals ``costs``; the mCU
    order i takes from its candidate j in ``demands[i][j]``: a node reserves whole CPUs, so an order's
    demand depends on the node) within the free mCU ``free``: CP-SAT's when the model has at most
    ``exact_limit`` variables and it does at least as well as the greedy pass, else the greedy pass's."""
    base = greedy(free, demands, cands)
    base_total = sum(costs[i][j] for i, j in base.items())
    chosen, solver, optimal = base, "greedy", False
    if sum(len(c) for c in cands) <= exact_limit:
        exact, optimal = solve_exact(free, demands, cands, costs, base, time_limit_s)
        exact_total = sum(costs[i][j] for i, j in exact.items())
        if (len(exact), -exact_total) >= (len(base), -base_total):
            chosen, solver = exact, "cp-sat"
        else:
            optimal = False
    return BatchChoice(chosen, solver, optimal, base, base_total)


def greedy(free: IntArray, demands: Sequence[IntArray], cands: list[IntArray]) -> dict[int, int]:
    """Each order in turn to its cheapest candidate with room: {order: candidate position}."""
    free = free.copy()
    chosen = {}
    for i, nodes in enumerate(cands):
        for j, n in enumerate(nodes):
            if (free[n] >= demands[i][j]).all():
                free[n] -= demands[i][j]
                chosen[i] = j
                break
    return chosen


def solve_exact(
    free: IntArray,
    demands: Sequence[IntArray],
    cands: list[IntArray],
    costs: list[list[int]],
    hint: dict[int, int],
    time_limit_s: float,
) -> tuple[dict[int, int], bool]:
    """The most orders matched, then the least total billed, exactly within the candidates (CP-SAT,
    started from the greedy choice ``hint``): ({order: candidate position}, proven optimal)."""
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    by_node: dict[int, list[tuple[int, int]]] = {}
    for i, nodes in enumerate(cands):
        for j, n in enumerate(nodes):
            x[i, j] = model.new_bool_var(f"x{i}_{j}")
            by_node.setdefault(int(n), []).append((i, j))
        if len(nodes):
            model.add_at_most_one(x[i, j] for j in range(len(nodes)))
    for n, members in by_node.items():
        for c in range(3):
            if sum(int(demands[i][j][c]) for i, j in members) > free[n, c]:
                model.add(sum(int(demands[i][j][c]) * x[i, j] for i, j in members) <= int(free[n, c]))
    for i, j in hint.items():
        model.add_hint(x[i, j], 1)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 2
    solver.parameters.max_time_in_seconds = time_limit_s
    matched = sum(x.values())
    model.maximize(matched)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return hint, False
    optimal = status == cp_model.OPTIMAL
    model.add(matched == round(solver.objective_value))
    model.clear_hints()
    for var in x.values():
        model.add_hint(var, solver.value(var))
    # Bills can be ~1e18 and more; CP-SAT needs int64 coefficients, so scale to 1e9 at most.
    top = max((max(c) for c in costs if c), default=1) or 1
    model.minimize(sum(round(costs[i][j] * 1_000_000_000 / top) * var for (i, j), var in x.items()))
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return hint, False
    optimal = optimal and status == cp_model.OPTIMAL
    return {i: j for (i, j), var in x.items() if solver.value(var)}, optimal
