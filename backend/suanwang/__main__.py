from suanwang.cli import cli

cli()
