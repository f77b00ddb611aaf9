"""``suanwang match-trace``: replay an OpenB-format trace through a matching policy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from suanwang.errors import SuanwangError
from suanwang.matching.framework import load_profiles
from suanwang.matching.trace import (
    ARTIFACT_POINTS,
    ARTIFACT_SEEDS,
    artifact_summary,
    load_trace,
    replay_artifact,
    replay_files,
)

POLICIES = ("random", "best_fit", "dot_product", "gpu_packing", "fgd", "default")


def parse_seeds(text: str) -> list[int]:
    """'42-51' or '42,43,50' (or a mix) as a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        raise click.BadParameter(f"expected seeds such as 42-51 or 42,43, got {text!r}", param_hint="--seeds") from None
    if not seeds or len(seeds) > 1000:
        raise click.BadParameter(f"expected 1 to 1000 seeds, got {len(seeds)}", param_hint="--seeds")
    return seeds


@click.command("match-trace")
@click.option(
    "--nodes",
    "nodes_csv",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="node list CSV (sn,cpu_milli,memory_mib,gpu,model)",
)
@click.option(
    "--pods",
    "pods_csv",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="pod list CSV (OpenB format)",
)
@click.option(
    "--policy",
    type=click.Choice(sorted(set(POLICIES) | set(load_profiles()))),
    default="default",
    show_default=True,
    help="matching profile",
)
@click.option(
    "--target",
    type=float,
    default=1.0,
    show_default=True,
    help="stop when arrived GPU demand reaches this multiple of the cluster's GPU capacity",
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed for the random policy")
@click.option(
    "--protocol",
    type=click.Choice(["creation", "artifact"]),
    default="creation",
    show_default=True,
    help="creation: pods in creation order up to the target; artifact: the FGD authors' protocol, seed by seed",
)
@click.option(
    "--seeds",
    default=f"{ARTIFACT_SEEDS[0]}-{ARTIFACT_SEEDS[-1]}",
    show_default=True,
    help="seeds of the artifact protocol (42-51, or 42,43)",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def match_trace(
    nodes_csv: Path, pods_csv: Path, policy: str, target: float, seed: int, protocol: str, seeds: str, as_json: bool
) -> None:
    """Replay a pod list on a node list through a matching policy.

    creation: pods in creation order (repeated until arrived GPU demand reaches the target); reports
    the GPU allocation rate, fragmentation and placements per second. artifact: as the FGD authors'
    simulator (shuffled by each seed, tuned to 1.3 x GPU capacity, no departures); reports the GPU
    allocation at 100% and 130% arrived demand, {mean, min, max} in percent over the seeds.
    """
    if not target > 0:
        raise click.BadParameter("must be positive", param_hint="--target")
    if protocol == "artifact":
        _artifact(nodes_csv, pods_csv, policy, parse_seeds(seeds), as_json)
        return
    try:
        result = replay_files(nodes_csv, pods_csv, policy, target=target, seed=seed)
    except SuanwangError as error:
        where = f" ({error.field})" if error.field else ""
        raise click.ClickException(f"{error.message}{where}") from error
    report = {"nodes": str(nodes_csv), "pods": str(pods_csv), **result.as_dict()}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{policy}: GPU allocation {result.allocation_rate:.2%} of {report['gpu_capacity']:g} GPUs when "
        f"{report['arrived_gpu']:g} GPUs of demand had arrived; fragmentation {result.fragmentation_rate:.2%} "
        f"of idle GPU; {result.orders_placed}/{result.orders_arrived} pods placed; "
        f"{result.placements_per_s:,.0f} placements/s"
    )


def _artifact(nodes_csv: Path, pods_csv: Path, policy: str, seeds: list[int], as_json: bool) -> None:
    try:
        nodes, orders, catalog = load_trace(nodes_csv, pods_csv)
        runs = [replay_artifact(nodes, orders, policy, seed, catalog=catalog) for seed in seeds]
    except SuanwangError as error:
        where = f" ({error.field})" if error.field else ""
        raise click.ClickException(f"{error.message}{where}") from error
    pods = sum(r.arrived_milli.size for r in runs)
    seconds = sum(r.seconds for r in runs)
    report: dict[str, object] = {
        "nodes": str(nodes_csv),
        "pods": str(pods_csv),
        "policy": policy,
        "protocol": "artifact",
        "seeds": seeds,
        **{f"allocation_at_{p}": artifact_summary(runs, p) for p in ARTIFACT_POINTS},
        "pod_attempts": pods,
        "placements_per_s": round(pods / seconds, 1) if seconds > 0 else None,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    at = {p: artifact_summary(runs, p) for p in ARTIFACT_POINTS}
    click.echo(
        f"{policy}, artifact protocol, {len(seeds)} seed(s): GPU allocation "
        + "; ".join(
            f"{at[p]['mean']:.2f}% (min {at[p]['min']:.2f}, max {at[p]['max']:.2f}) at {p}% arrived"
            for p in ARTIFACT_POINTS
        )
    )
