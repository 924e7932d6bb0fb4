"""`python -m harness.cli`: the `curvebench` script."""

from harness.cli import main

main()
