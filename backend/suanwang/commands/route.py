"""`suanwang route`: compute a path (with its SRv6 segment list and transit fees) between two routers."""

from __future__ import annotations

import json

import click

from suanwang.errors import SuanwangError


@click.command()
@click.option(
    "--topology",
    "topologies",
    multiple=True,
    required=True,
    help="GraphML file or Topology Zoo name (repeatable), or one peering YAML file",
)
@click.option("--from", "src", required=True, help="router label, or Operator/Label")
@click.option("--to", "dst", required=True, help="router label, or Operator/Label")
@click.option("--max-latency-ms", type=float, default=None, help="upper bound on one-way latency")
@click.option("--min-bandwidth-gbps", type=float, default=None, help="free bandwidth needed on every link")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def route(
    topologies: tuple[str, ...],
    src: str,
    dst: str,
    max_latency_ms: float | None,
    min_bandwidth_gbps: float | None,
    as_json: bool,
) -> None:
    """Print the lowest-latency path meeting the bounds, its segment list, operators and transit fee."""
    from suanwang.network.config import load_network

    try:
        net = load_network(list(topologies))
        path = net.path(src, dst, max_latency_ms, min_bandwidth_gbps)
    except SuanwangError as exc:
        raise click.ClickException(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
    out = path.to_json()
    out["from"], out["to"] = path.routers[0], path.routers[-1]
    out["transit_fee_unit"] = "token base units per Gbps-hour of reserved bandwidth"
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(" -> ".join(path.routers))
    click.echo(
        f"latency {path.latency_ms:.3f} ms, bottleneck {path.bandwidth_gbps:g} Gbps free, "
        f"{len(path.links)} hops, operators {', '.join(path.operators)}"
    )
    click.echo(f"segments {', '.join(path.segments)}")
    for op, fee in path.transit_fee_per_gbps_hour.items():
        click.echo(f"transit {op}: {fee} base units per Gbps-hour")
