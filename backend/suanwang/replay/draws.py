"""What a scenario's seed draws before the replay touches the chain: its nodes (specifications from the
scenario or sampled from the OpenB trace, prices with their jitter) and its orders (arrival times,
access points, shapes, durations, latency bounds and budgets).

The draws come from one generator in a fixed order (every node, then every order), so a seed gives
the same nodes and orders, and so the same replay, every time.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from suanwang.compute.catalog import Catalog
from suanwang.compute.measure import device_units, grade, node_units, thread_units
from suanwang.errors import SuanwangError
from suanwang.fees import compute_fee
from suanwang.network.model import Network
from suanwang.replay.inputs import openb_nodes, openb_pods
from suanwang.replay.records import NodeState, Plan
from suanwang.replay.scenario import Scenario

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = "0x" + "00" * 32
# The replay runs no jobs: every order signs the digest of one plain job specification.
REPLAY_SPEC_DIGEST = "0x" + hashlib.sha256(b'{"command": ["true"]}').hexdigest()


def _router(scenario: Scenario, network: Network, name: str, where: str) -> int:
    try:
        return network.router_index(name)
    except SuanwangError as exc:
        raise SuanwangError(f"{scenario.path}:{where}: {exc.message}", field=f"{scenario.path}:{where}") from None


def _paid_to(scenario: Scenario, operator: str) -> str:
    return next(op.paid_to for op in scenario.operators if op.name == operator)


def _compute_fee_rounded_up(price_per_cu_hour: int, total_mcu: int, duration_s: int) -> int:
    """fees.compute_fee rounded up rather than down (floor division of the negated fee is the negated
    ceiling): a budget built on it never falls a base unit short of the bill at the price cap."""
    return -compute_fee(-price_per_cu_hour, total_mcu, duration_s)


def draw_nodes(scenario: Scenario, network: Network, catalog: Catalog, rng: np.random.Generator) -> list[NodeState]:
    nodes: list[NodeState] = []
    openb_cpu = int(catalog.openb_cpu.code)
    for group in scenario.nodes:
        rows: list[Any] = []
        if group.openb is not None:
            table = openb_nodes(scenario, group, catalog)
            picks = rng.choice(len(table), size=min(group.count, len(table)), replace=False)
            rows = [table[int(i)] for i in sorted(picks)]
        for k in range(group.count):
            router = group.routers[k % len(group.routers)]
            index = _router(scenario, network, router, f"{group.line}:nodes.routers")
            operator_name = network.routers[index].operator
            operator_party = group.operator or _paid_to(scenario, operator_name)
            if group.spec is not None:
                spec = dict(group.spec)
            else:
                row = rows[k % len(rows)]
                units = node_units(
                    catalog,
                    cpu_model=openb_cpu,
                    vcpus=row.cpu_milli / 1000,
                    gpu_model=int(row.gpu_model),
                    gpu_count=row.gpu_count,
                )
                spec = {
                    "logic_mcu": units.logic,
                    "parallel_mcu": units.parallel,
                    "neural_mcu": units.neural,
                    "memory_mib": row.memory_mib,
                    "gpu_model": int(row.gpu_model) if row.gpu_count else 0,
                    "gpu_count": row.gpu_count,
                    "tier": int(grade(units)),
                }
            jitter = 1.0 + group.price_jitter * float(rng.uniform(-1, 1)) if group.price_jitter else 1.0
            price = max(1, int(group.price_per_cu_hour * jitter))
            nodes.append(NodeState(f"{group.label}#{k}", group.owner, router, index, operator_party, spec, price))
    return nodes


def draw_orders(scenario: Scenario, network: Network, catalog: Catalog, rng: np.random.Generator) -> list[Plan]:
    plans: list[Plan] = []
    cpu = catalog.openb_cpu
    pods_cache: dict[str, list[Any]] = {}
    for stream in scenario.orders:
        arrivals = np.sort(rng.integers(stream.window[0], stream.window[1] + 1, size=stream.count))
        pods: list[Any] = []
        if stream.openb is not None:
            pods = openb_pods(scenario, stream, catalog, pods_cache)
        for j, at in enumerate(arrivals.tolist()):
            ap = stream.access_points[int(rng.integers(len(stream.access_points)))]
            _router(scenario, network, ap, f"{stream.line}:orders.access_points")
            if stream.shape is not None:
                shape = dict(stream.shape)
            else:
                pod = pods[int(rng.integers(len(pods)))]
                units = thread_units(cpu).scaled(pod.cpu_milli / 1000)
                model = int(pod.gpu_models[0]) if len(pod.gpu_models) == 1 else 0
                if pod.num_gpu:
                    ref = catalog.by_code(model) if model else catalog.by_code(int(catalog.openb_code("V100M16")))
                    units = units + device_units(ref).scaled(pod.num_gpu * pod.gpu_milli / 1000)
                shape = {
                    "logic_mcu": units.logic,
                    "parallel_mcu": units.parallel,
                    "neural_mcu": units.neural,
                    "memory_mib": pod.memory_mib,
                    "gpu_model": model,
                    "gpu_count": pod.num_gpu,
                    "min_tier": 0,
                }
            lo, hi = stream.duration
            duration = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi))) / 60) * 60) or lo
            latency = int(rng.integers(stream.max_latency_ms[0], stream.max_latency_ms[1] + 1))
            mcu = shape["logic_mcu"] + shape["parallel_mcu"] + shape["neural_mcu"]
            # The compute fee at the price cap, rounded up, and a fifth more.
            budget = _compute_fee_rounded_up(stream.max_price_per_cu_hour, mcu, duration) * 12 // 10
            order = {
                "buyer": "",  # filled once addresses are known
                "matcher": ZERO_ADDRESS,
                "logicMcu": shape["logic_mcu"],
                "parallelMcu": shape["parallel_mcu"],
                "neuralMcu": shape["neural_mcu"],
                "memoryMib": shape["memory_mib"],
                "gpuModel": shape["gpu_model"],
                "gpuCount": shape["gpu_count"],
                "gpuMilli": 0,
                "minTier": shape["min_tier"],
                "duration": duration,
                "minRunSeconds": 0,
                "maxPricePerCuHour": stream.max_price_per_cu_hour,
                "maxTotal": budget + stream.transit_allowance,
                "maxTransit": stream.transit_allowance,
                "maxLatencyMs": latency,
                "minBandwidthMbps": stream.min_bandwidth_mbps,
                "autoAccept": True,
                "expiry": 0,
                "nonce": len(plans) + j,
                "epoch": 0,  # the epoch at its match round
                "specDigest": REPLAY_SPEC_DIGEST,
                "serviceId": ZERO_BYTES32,
                "apnId": 0,
                "apnSlaClass": 0,
            }
            plans.append(Plan(0, stream.buyer, int(at), ap, order))
    plans.sort(key=lambda p: (p.at, p.order["nonce"]))
    for i, plan in enumerate(plans):
        plan.index = i
    return plans
