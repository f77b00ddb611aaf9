"""The ``suanwang`` command line: one group, one module per command under ``suanwang.commands``."""

from __future__ import annotations

import click

from suanwang.commands.agent import agent
from suanwang.commands.arbiter import arbiter
from suanwang.commands.dataplane import dataplane
from suanwang.commands.match_trace import match_trace
from suanwang.commands.order_content import order  # `order` with its sealed-content commands
from suanwang.commands.replay import replay
from suanwang.commands.route import route
from suanwang.commands.serve import serve
from suanwang.commands.up import up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="suanwang")
def cli() -> None:
    """Suanwang (算网): trade compute together with the network path to it."""


cli.add_command(serve)
cli.add_command(agent)
cli.add_command(up)
cli.add_command(route)
cli.add_command(dataplane)
cli.add_command(match_trace)
cli.add_command(replay)
cli.add_command(order)
cli.add_command(arbiter)
