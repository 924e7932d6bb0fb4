"""The training engine's parts, one job each: the stop rule (`stop`), the trial axis
(`trial_axis`), a group's compiled functions (`program`), a trial's rows (`ledger`), the
planner from requests to groups to programs (`plan`) and the drivers that run programs
(`drive`: compiled segments with in-loop or host evaluation, or concrete steps). The public
entry points are `harness.runner.run_group` (a group) and `harness.experiment.run_sweep`
(every command that trains)."""
