"""The replay's report: markdown, PNG plots (matplotlib, Agg) and the figures as JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from suanwang.replay.runner import ReplayResult
from suanwang.replay.scenario import TOKEN


def _tokens(amount: int | str) -> str:
    return f"{int(amount) / TOKEN:,.6f}".rstrip("0").rstrip(".")


def _signed(amount: int) -> str:
    return _tokens(amount) if amount >= 0 else "-" + _tokens(-amount)


def plots(r: ReplayResult, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    hours = [s.t / 3600 for s in r.samples]

    fig, ax = plt.subplots(figsize=(9, 5))
    for name in r.before:
        ax.plot(hours, [(s.holdings[name] - r.before[name]) / TOKEN for s in r.samples], label=name)
    ax.set_xlabel("scenario time (h)")
    ax.set_ylabel("change in holdings (tokens)")
    ax.set_title("Balances of every party (wallet + escrow + stake), change since the start")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    files["balances"] = "balances.png"
    fig.tight_layout()
    fig.savefig(out / files["balances"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    steps = sorted(r.gas, key=lambda k: -statistics.mean(r.gas[k]))
    ax.barh(steps, [statistics.mean(r.gas[k]) for k in steps])
    ax.set_xlabel("mean gas used")
    ax.set_title("Gas per step")
    ax.grid(alpha=0.3, axis="x")
    files["gas"] = "gas.png"
    fig.tight_layout()
    fig.savefig(out / files["gas"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    rate = [s.matched / s.submitted if s.submitted else 0 for s in r.samples]
    ax.plot(hours, rate, label="cumulative match rate")
    ax.plot(hours, [s.utilisation for s in r.samples], label="compute utilisation (reserved mCU / capacity)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("scenario time (h)")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title("Match rate and utilisation")
    files["match_utilisation"] = "match_utilisation.png"
    fig.tight_layout()
    fig.savefig(out / files["match_utilisation"], dpi=110)
    plt.close(fig)

    bounded = [d for d in r.deals if d.sla_met is not None]
    fig, ax = plt.subplots(figsize=(6, 5))
    if bounded:
        asked = [float(d.plan.order["maxLatencyMs"]) for d in bounded]
        got = [d.latency_ms for d in bounded]
        colours = ["tab:red" if not d.sla_met else ("tab:orange" if d.rerouted else "tab:blue") for d in bounded]
        ax.scatter(asked, got, s=10, c=colours)
        top = max(max(asked), max(got)) * 1.05
        ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set_xlabel("latency asked (ms)")
    ax.set_ylabel("latency of the path (ms)")
    ax.set_title("SLA: latency achieved against asked\n(blue met, orange re-routed and met, red missed)")
    ax.grid(alpha=0.3)
    files["sla"] = "sla.png"
    fig.tight_layout()
    fig.savefig(out / files["sla"], dpi=110)
    plt.close(fig)

    revenue = r.figures["transit_revenue"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if revenue:
        ax.bar(list(revenue), [int(v) / TOKEN for v in revenue.values()])
    else:
        ax.text(0.5, 0.5, "no transit paid (stage 1 records, pays nothing)", ha="center", transform=ax.transAxes)
    ax.set_ylabel("tokens")
    ax.set_title("Transit revenue per operator (settled deals)")
    ax.grid(alpha=0.3, axis="y")
    files["transit"] = "transit.png"
    fig.tight_layout()
    fig.savefig(out / files["transit"], dpi=110)
    plt.close(fig)
    return files


def write_report(r: ReplayResult, out: Path, verification: dict[str, Any] | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    files = plots(r, out)
    f = r.figures
    s = r.scenario
    lines = [
        f"# Replay of `{s.name}`" + (" (short form)" if s.short else ""),
        "",
        s.description,
        "",
        f"Scenario `{s.path}`, seed {s.seed}, rounds of {s.step} s; replayed in {r.seconds:.1f} s over blocks "
        f"{r.start_block}..{r.end_block}; market `{r.contracts['Market']}`.",
        "",
        "## Outcomes expected by the scenario",
        "",
        "| expectation | where | actual | holds |",
        "| --- | --- | --- | --- |",
        *[f"| {text} | {where} | {actual} | {'yes' if ok else '**NO**'} |" for text, where, actual, ok in r.outcomes],
        "",
        "## Figures",
        "",
        "| figure | value |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in f.items() if not isinstance(v, dict)],
        "",
        f"Match rate {f['match_rate']:.1%} ({f['matched']} of {f['orders']} orders); SLA compliance "
        f"{f['sla_compliance']:.1%} of the deals that asked for a latency bound (after re-routing).",
        "",
        "Why orders went unmatched (first sentence of the engine's or the market's explanation):",
        "",
        *[f"- {n} x {reason}" for reason, n in f["unmatched_reasons"].items()],
        "",
        "## Balances of every party",
        "",
        f"![balances]({files['balances']})",
        "",
        "| party | address | before | after | change |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {n} | `{r.addresses[n]}` | {_tokens(r.before[n])} | {_tokens(r.after[n])} | "
            f"{_signed(r.after[n] - r.before[n])} |"
            for n in r.before
        ],
        "",
        "## Gas per lifecycle step",
        "",
        f"![gas]({files['gas']})",
        "",
        "| step | calls | mean gas | max gas |",
        "| --- | --- | --- | --- |",
        *[f"| {k} | {len(v)} | {statistics.mean(v):,.0f} | {max(v):,} |" for k, v in sorted(r.gas.items())],
        "",
        "## Match rate, utilisation, SLA",
        "",
        f"![match]({files['match_utilisation']})",
        "",
        f"![sla]({files['sla']})",
        "",
        "## Transit revenue per operator",
        "",
        f"![transit]({files['transit']})",
        "",
        "| operator | transit earned (tokens) |",
        "| --- | --- |",
        *[f"| {k} | {_tokens(v)} |" for k, v in f["transit_revenue"].items()],
        "",
        "## Conservation",
        "",
        "| check | left | right | holds |",
        "| --- | --- | --- | --- |",
        *[
            f"| {k} | {v['left']} | {v['right']} | {'yes' if v['ok'] else '**NO**'} |"
            for k, v in r.conservation["checks"].items()
        ],
        "",
        f"Escrow at the end: credits {_tokens(r.conservation['credits'])}, stakes "
        f"{_tokens(r.conservation['stakes'])}, platform fees {_tokens(r.conservation['platform_fees'])}, locked in "
        f"open deals {_tokens(r.conservation['locked'])} tokens.",
        "",
    ]
    if verification is not None:
        lines += [
            "## Independent check against the chain",
            "",
            "Read with plain JSON-RPC: `balanceOf`/`stakeOf` by `eth_call`, events by raw `eth_getLogs` decoded "
            "with `eth_abi` (suanwang/replay/verify.py; no code shared with the replay). "
            + ("**Every figure agrees.**" if verification["ok"] else "**Disagreements found.**"),
            "",
            "| figure | report | chain | agrees |",
            "| --- | --- | --- | --- |",
            *[f"| {a} | {b} | {c} | {'yes' if ok else '**NO**'} |" for a, b, c, ok in verification["rows"]],
            "",
        ]
    lines += ["## Log", "", "```", *r.log, "```", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "figures.json").write_text(
        json.dumps(
            {
                "scenario": s.name,
                "short": s.short,
                "seed": s.seed,
                "seconds": round(r.seconds, 2),
                "figures": r.figures,
                "conservation": r.conservation,
                "outcomes": [{"expect": t, "where": w, "actual": a, "ok": ok} for t, w, a, ok in r.outcomes],
                "gas": {
                    k: {"calls": len(v), "mean": round(statistics.mean(v)), "max": max(v)} for k, v in r.gas.items()
                },
                "verification": verification,
                "blocks": [r.start_block, r.end_block],
            },
            indent=2,
            default=str,
        )
    )
    return report
