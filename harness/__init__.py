"""curvebench harness: contract, runner, curvature engine, results database, CLI."""

__version__ = "0.1.0"
