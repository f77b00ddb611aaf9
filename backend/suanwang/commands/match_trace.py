"""``suanwang match-trace``: replay an OpenB-format trace through a matching policy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from suanwang.errors import SuanwangError
from suanwang.matching.framework import load_profiles
from suanwang.matching.trace import replay_files

POLICIES = ("random", "best_fit", "dot_product", "gpu_packing", "fgd", "default")


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
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def match_trace(nodes_csv: Path, pods_csv: Path, policy: str, target: float, seed: int, as_json: bool) -> None:
    """Replay pods in creation order (repeated until arrived GPU demand reaches the target) and
    report the GPU allocation rate, fragmentation and placements per second."""
    if not target > 0:
        raise click.BadParameter("must be positive", param_hint="--target")
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
