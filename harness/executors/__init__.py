"""Executors that run a sweep's groups beyond this process, into one shared results database:
`harness.executors.ray.RayExecutor` (a Ray cluster) and
`harness.executors.submitit.SubmititExecutor` (Slurm job arrays). Both are optional extras and
are imported from their modules; what they share (trial identity, finished and pending trials,
marking lost runs interrupted, retries that never redo a finished trial) is in `faults`.
"""

from harness.executors.faults import (DEFAULT_MAX_RETRIES, FINISHED, ExecutorError, Lost, TrialKey,
                                      finished_trials, mark_lost, pending_requests, request_key,
                                      run_key, run_with_retries, trial_key)

__all__ = ["DEFAULT_MAX_RETRIES", "FINISHED", "ExecutorError", "Lost", "TrialKey", "finished_trials",
           "mark_lost", "pending_requests", "request_key", "run_key", "run_with_retries", "trial_key"]
