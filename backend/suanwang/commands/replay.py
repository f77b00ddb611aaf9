"""``suanwang replay``: replay a rollout scenario against Anvil and write its report."""

from __future__ import annotations

from pathlib import Path

import click

from suanwang.errors import SuanwangError


@click.command("replay")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=None, help="override the scenario's seed")
@click.option("--short", is_flag=True, help="the scenario's short form (fewer nodes and orders)")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="report folder (default reports/replay/<scenario>[-short])",
)
@click.option("--rpc", default=None, help="replay on this chain (deploys there) instead of a fresh Anvil")
@click.option(
    "--deployment",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="with --rpc: use this live deployment instead of deploying",
)
@click.option("--quiet", is_flag=True, help="no progress bar")
def replay(
    scenario: Path,
    seed: int | None,
    short: bool,
    out: Path | None,
    rpc: str | None,
    deployment: Path | None,
    quiet: bool,
) -> None:
    """Replay SCENARIO (YAML, docs/replay.md) with the real contracts, engine and routing; write a
    markdown report with plots and check its figures against the chain. Exit 1 if an expected
    outcome, the conservation check or the independent check fails."""
    from suanwang.paths import REPO_ROOT
    from suanwang.replay.run import replay as run_replay
    from suanwang.replay.scenario import load_scenario

    try:
        loaded = load_scenario(scenario, short=short, seed=seed)
        folder = out or REPO_ROOT / "reports" / "replay" / (loaded.name + ("-short" if short else ""))
        outcome = run_replay(loaded, folder, rpc_url=rpc, deployment_file=deployment, progress=not quiet)
    except SuanwangError as error:
        raise click.ClickException(error.message) from error
    result = outcome.result
    for text, where, actual, ok in result.outcomes:
        click.echo(f"{'ok  ' if ok else 'FAIL'} {text} (actual {actual}; {where})")
    click.echo(f"{'ok  ' if result.conservation['ok'] else 'FAIL'} conservation")
    click.echo(
        f"{'ok  ' if outcome.verification['ok'] else 'FAIL'} report agrees with the chain "
        f"({len(outcome.verification['rows'])} figures)"
    )
    click.echo(f"report: {outcome.report} ({result.seconds:.1f} s)")
    if not outcome.ok:
        raise SystemExit(1)
