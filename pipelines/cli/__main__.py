"""`python -m pipelines.cli`, the same as `alexnet-tfx`."""

from pipelines.cli import main

main(prog_name="alexnet-tfx")
