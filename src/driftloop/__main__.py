"""``python -m driftloop``: the same as the ``driftloop`` command."""

from driftloop.cli import main

main(prog_name="driftloop")
