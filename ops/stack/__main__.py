from ops.stack.cli import cli

cli(prog_name="python -m ops.stack")
