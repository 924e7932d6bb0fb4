"""Regression check of a rerun against the matching reference set, in tiers.

Tiers, in order (the first three of the statistical ones decide the verdict):

1. comparability: workload version hash, submission code hash, data fingerprint, and the
   run settings that change what "steps" means (batch size, eval interval, budget, RNG
   derivation) must equal the references', else the verdict is `not_comparable`.
   Differing hparams are reported and then judged by the tiers below.
2. bit-exact: where the environment is the same (library versions, backend, device kind,
   CPU model, XLA flags, precision, chunk mode) on CPU, or on GPU with
   --xla_gpu_deterministic_ops=true, a candidate and a reference run of the same seed must
   have identical eval curves. Runs of different group sizes (trials per compiled program)
   are skipped as not bit-comparable: a batched program may round differently.
3. convergence: at most one candidate run misses the target (and at least one reaches it).
4. steps-to-target: a pooled trimmed-mean t-test (Yuen) of candidate vs reference
   steps-to-target that fails only when significant *and* beyond the set's relative
   tolerance, so both too-slow and suspiciously fast reruns fail (harness/check/statistics.py
   says which test and why).
5. eval-curve and curvature bands: candidate points outside the references' per-step
   envelope (widened by half its width) are warnings, never failures.

The false-reject rate of tiers 3+4 is estimated by resampling the references
(`statistics.false_reject_rate`). The tiers are in harness/check/tiers.py; this module
chooses the set, reruns or reads the candidates and puts the report together.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from harness import environment, refs
from harness.check.statistics import RESAMPLES, false_reject_rate, steps_of
from harness.check.tiers import (Tier, bit_exact, comparability, convergence, curvature_band,
                                 curve_band, environment_line, steps_tier)
from harness.errors import CheckError
from harness.experiment import load_dataset, run_sweep
from harness.progress import Phase
from harness.refs import RefSet
from harness.records.status import FINISHED, RunOrigin
from harness.records.sweep import SweepEvent, SweepPhase, TrialRequest
from harness.records.trial import RNG_DERIVATION, TrialOptions

EXIT_CODES = {"pass": 0, "fail": 1, "not_comparable": 2}


@dataclasses.dataclass
class Report:
    """Everything the check compared and decided; `exit_code` is the CI verdict."""

    verdict: str
    workload: str
    submission: str
    reference_set: str | None
    reference_origin: str | None
    hardware: str | None
    reference_runs: list[str]
    candidate_runs: list[str]
    tiers: list[Tier]
    false_reject_rate: dict[str, Any] | None = None
    message: str = ""
    #: one line: whether this environment is the references' and what that means (environment_line)
    environment: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["exit_code"] = self.exit_code
        return d


def matching_sets(sets: list[RefSet], variant: str, submission: str, backend: str,
                  device_kind: str, prec: str) -> list[RefSet]:
    return [s for s in sets if (s.header["variant"], s.header["submission"], s.header["backend"],
                                s.header["device_kind"], s.header["precision"])
            == (variant, submission, backend, device_kind, prec)]


def choose_set(sets: list[RefSet], *, variant: str, submission: str, backend: str,
               device_kind: str, prec: str, code: dict[str, Any]) -> RefSet:
    """The reference set for variant x submission on this hardware class and precision,
    preferring one with the same code hashes, data and hparams, then the newest."""
    found = matching_sets(sets, variant, submission, backend, device_kind, prec)
    if not found:
        available = sorted({f"{s.header['variant']} / {s.header['submission']} on {s.hardware}"
                            for s in sets}) or ["none"]
        raise CheckError(f"no reference set for {variant} / {submission} on {backend} / {device_kind} "
                         f"/ {prec}; available: {'; '.join(available)}")

    def score(s: RefSet) -> tuple:
        same = [s.header[f] == code[f] for f in ("workload_version", "submission_hash",
                                                   "data_fingerprint", "hparams")]
        return (sum(same[:3]), same[3], s.header["created_at"])

    return max(found, key=score)


def compare(refset: RefSet, candidates: list[dict[str, Any]], *, resamples: int = RESAMPLES,
            skip_bit_exact: bool = False) -> Report:
    """All tiers of candidate runs against a set, and the verdict."""
    if not candidates:
        raise CheckError("no candidate runs to compare")
    run0 = candidates[0]["run"]
    base = dict(workload=run0["variant"], submission=run0["submission"], reference_set=refset.id,
                reference_origin=refset.origin, hardware=refset.hardware,
                reference_runs=[r["run"]["id"] for r in refset.records],
                candidate_runs=[c["run"]["id"] for c in candidates],
                environment=environment_line(refset, run0["environment"]))
    tiers = []
    for c in candidates:
        tier = comparability(refset, c["run"])
        if tier.status == "fail":
            tier.summary = f"run {c['run']['id'][:8]}: {tier.summary}"
            return Report("not_comparable", tiers=[tier], **base)
    tiers.append(tier)
    if skip_bit_exact:
        tiers.append(Tier("bit-exact", "skip", "same-seed eval curves", "skipped on request"))
    else:
        tiers.append(bit_exact(refset, candidates))
    tiers.append(convergence(refset, candidates))
    tiers.append(steps_tier(refset, candidates))
    tiers.append(curve_band(refset, candidates, _target_metric(refset)))
    tiers.append(curvature_band(refset, candidates))
    ref_steps = [steps_of(r) for r in refset.records]
    frr = false_reject_rate([s for s, _ in ref_steps], [m for _, m in ref_steps], len(candidates),
                            eval_every=refset.records[0]["run"]["eval_every"],
                            tolerance=refset.header["steps_tolerance"], resamples=resamples)
    verdict = "fail" if any(t.status == "fail" for t in tiers) else "pass"
    return Report(verdict, tiers=tiers, false_reject_rate=frr, **base)


def _target_metric(refset: RefSet) -> str:
    """The workload's target metric (falls back to accuracy for unknown workloads)."""
    from workloads import REGISTRY

    cls = REGISTRY.get(refset.header["workload"])
    return cls.target.metric if cls is not None else "accuracy"


def candidate_records(db, run_ids: Sequence[str], variant: str, submission: str) -> list[dict[str, Any]]:
    """Records of given runs, which must all be finished runs of variant x submission."""
    records = refs.records_from_db(db, run_ids)
    for r in records:
        run = r["run"]
        if (run["variant"], run["submission"]) != (variant, submission):
            raise CheckError(f"run {run['id'][:8]} is {run['variant']} / {run['submission']}, "
                             f"not {variant} / {submission}")
        if run["status"] not in FINISHED:
            raise CheckError(f"run {run['id'][:8]} is {run['status']}, not finished")
    seeds = [r["run"]["seed"] for r in records]
    if len(set(seeds)) != len(seeds):
        raise CheckError(f"runs repeat seeds {sorted(seeds)}; give one run per seed")
    keys = {json.dumps(refs.run_key(r["run"]), sort_keys=True) for r in records}
    if len(keys) > 1:
        raise CheckError("the runs differ in code, hparams, data or hardware; check one kind at a time")
    return records


def check(db, sets: list[RefSet], workload, submission, *, seeds: Sequence[int] = (),
          run_ids: Sequence[str] = (), data_dir: str | None = None,
          data_source: str | None = None, resamples: int = RESAMPLES,
          skip_bit_exact: bool = False, on_event: Callable[[SweepEvent], None] | None = None,
          compile_cache: str | None = None, command: str = "") -> Report:
    """Rerun `seeds` (or take `run_ids`) of workload x submission and compare with the set.

    Reruns go through the experiment layer, each trial alone (runs.group_size 1) like the
    references, so the bit-exact tier compares like with like."""
    if bool(seeds) == bool(run_ids):
        raise CheckError("give either seeds to rerun or run ids to check, not both")
    if run_ids:
        records = candidate_records(db, run_ids, workload.spec, submission.name)
        env = records[0]["run"]["environment"]
        code = records[0]["run"]
    else:
        env = environment.fingerprint()
        if on_event is not None:
            on_event(SweepPhase(Phase.LOADING_DATA, workload.spec))
        dataset = load_dataset(workload, data_dir, data_source)
        code = {"workload_version": workload.version, "submission_hash": submission.code_hash,
                "data_fingerprint": dataset.fingerprint, "hparams": submission.hparams,
                "batch_size": submission.batch_size(workload.name, workload.batch_size),
                "eval_every": workload.eval_every, "max_steps": workload.max_steps,
                "rng_derivation": RNG_DERIVATION}
    refset = choose_set(sets, variant=workload.spec, submission=submission.name,
                        backend=env["backend"], device_kind=env["device_kind"],
                        prec=refs.precision(env), code=code)
    if not run_ids:
        tier = comparability(refset, code)
        if tier.status == "fail":
            return Report("not_comparable", workload.spec, submission.name, refset.id, refset.origin,
                          refset.hardware, [r["run"]["id"] for r in refset.records], [], [tier],
                          message="nothing was rerun: the references were made with other code or data",
                          environment=environment_line(refset, env))
        requests = [TrialRequest(workload.spec, str(submission.path), submission.hparams, seed)
                    for seed in seeds]
        sweep = run_sweep(requests, TrialOptions(origin=RunOrigin.CHECK), db.url,
                          command=command, data_dir=data_dir, data_source=data_source,
                          on_event=on_event, timed_alone=True, compile_cache=compile_cache)
        records = refs.records_from_db(db, [t.result.run_id for t in sweep.trials])
    return compare(refset, records, resamples=resamples, skip_bit_exact=skip_bit_exact)
