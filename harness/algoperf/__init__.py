"""AlgoPerf compatibility: run AlgoPerf's JAX submission files unmodified and score as AlgoPerf.

- `api/`            the names AlgoPerf submissions import (`algoperf.spec`, ...), from its docs
- `shim`            puts `api` in sys.modules as `algoperf` (and `algorithmic_efficiency`, its
                    v0.5 name) while a submission is loaded or called
- `jax_compat`      removed JAX names older files call: aliased while they run, or one line
- `repo_imports`    helpers imported by their path in AlgoPerf's repository (`algorithms.x`)
- `workload_view`   a suite workload seen through AlgoPerf's Workload API (graph batches too)
- `names`           the suite's workloads by AlgoPerf's names, loss types and dropout rules
- `adapter`         an AlgoPerf submission behind the suite's submission API
- `own_files`       the files a submission writes itself (its checkpoints) kept in its own folder
- `loading`         the AlgoPerf format of the submission loader (`harness.submissions`)
- `search_space`    tuning_search_space.json: lists of points, ranges, quasi-random sampling
- `scoring`         the external-tuning ruleset's times and AlgoPerf's performance-profile score
- `hooks`           the runner hooks AlgoPerf has (prepare_for_eval, eval_results,
                    TrainingCompleteError, concrete global_step, AlgoPerf's timing): the
                    library side and the spec of what the runner does with it
"""
