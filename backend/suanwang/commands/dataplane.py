"""`suanwang dataplane demo`: program an SRv6 lease into Linux namespaces and prove the packets follow it."""

from __future__ import annotations

import json

import click

from suanwang.errors import SuanwangError


@click.group()
def dataplane() -> None:
    """The real Linux SRv6 data plane (needs root)."""


@dataplane.command()
@click.option("--topology", default="Abilene", show_default=True, help="GraphML file or Topology Zoo name")
@click.option("--from", "src", default="New York", show_default=True, help="ingress router label")
@click.option("--to", "dst", default="Los Angeles", show_default=True, help="egress router label")
@click.option("--packets", type=int, default=100, show_default=True, help="UDP probes per measurement")
@click.option("--json", "as_json", is_flag=True, help="print everything measured as JSON")
def demo(topology: str, src: str, dst: str, packets: int, as_json: bool) -> None:
    """Build the topology as namespaces, steer UDP over a non-shortest path, switch paths, tear down."""
    from suanwang.network.dataplane.demo import run_demo
    from suanwang.network.dataplane.probe import srv6_missing

    missing = srv6_missing()
    if missing is not None:
        raise click.ClickException(missing)
    try:
        result = run_demo(topology, src, dst, packets)
    except SuanwangError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        checks = result["checks"]
        click.echo(
            f"built {result['namespaces']} namespaces ({result['routers']} routers, {result['links']} links) "
            f"in {result['build_seconds']} s"
        )
        click.echo(f"shortest : {' -> '.join(result['shortest']['path'])}")
        for key in ("lease", "switched"):
            m = result[key]
            click.echo(f"{key:9}: {' -> '.join(m['path'])}  segments {', '.join(m['segments'])}")
            click.echo(f"           received {m['received']}/{m['sent']}; RX deltas {m['rx_delta']}")
        click.echo(f"captured SRH at {result['capture']['interface']}: {result['capture'].get('srh_hex')}")
        for name, value in checks.items():
            click.echo(f"check {name}: {value}")
    ok = (
        all(
            result["checks"][k] for k in ("lease_followed", "shortest_path_flat", "switch_moved", "srh_matches_encoder")
        )
        and not result["checks"]["namespaces_left"]
    )
    if not ok:
        raise SystemExit(1)
