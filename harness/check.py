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
4. steps-to-target: two-sided pooled trimmed-mean t-test (Yuen 1974, pooled form) at
   alpha = 0.05 of candidate vs reference steps-to-target; fails only when significant
   *and* the relative difference of the trimmed means exceeds the set's tolerance
   (never below one eval interval), so both too-slow and suspiciously fast reruns fail.
   Spread: the pooled 20%-winsorized standard deviation, floored at eval_every/sqrt(12).
   Why: the trimmed mean drops the fastest and slowest seeds as MLPerf's reference
   convergence points do, and the winsorized variance is the spread that belongs to a
   trimmed mean (one straggling seed cannot inflate it); pooling borrows the references'
   many seeds for the candidate's few, which is right under the null hypothesis that
   both come from one distribution; the floor is the rounding error of a target that is
   only observed every eval_every steps (uniform over one interval), which keeps a set
   whose seeds all hit the target at the same eval from having zero spread.
   A miss counts as the step budget (a lower bound on its steps).
5. eval-curve and curvature bands: candidate points outside the references' per-step
   envelope (widened by half its width) are warnings, never failures.

The false-reject rate of tiers 3+4 is estimated by resampling: candidate and reference
samples of the real sizes are drawn with replacement from the references and the rule is
applied to each draw.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from harness import environment, refs
from harness.db import RunOrigin
from harness.errors import UserError
from harness.experiment import load_dataset, run_sweep
from harness.records.sweep import SweepEvent, SweepPhase, TrialRequest
from harness.progress import Phase
from harness.refs import RefSet
from harness.records.trial import RNG_DERIVATION, TrialOptions

ALPHA = 0.05
TRIM = 0.2
MAX_MISSES = 1
RESAMPLES = 2000
BAND_WIDEN = 0.5
EXIT_CODES = {"pass": 0, "fail": 1, "not_comparable": 2}
#: run settings that must match for steps-to-target to mean the same thing
SETTINGS = ("batch_size", "eval_every", "max_steps", "rng_derivation")
#: environment fields that must match for bit-exact reproduction to be expected
BIT_EXACT_ENV = ("jax_version", "jaxlib_version", "backend", "device_kind", "device_count",
                 "xla_flags", "x64", "cpu")


class CheckError(UserError, ValueError):
    """The check cannot run as asked (bad runs, no matching references); exit code 2."""


@dataclasses.dataclass
class Tier:
    """One tier's outcome: pass, fail, warn or skip, a one-line summary, and its numbers."""

    name: str
    status: str
    compared: str
    summary: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


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


# -- statistics ---------------------------------------------------------------------------

def trim_count(n: int, trim: float = TRIM) -> int:
    return int(math.floor(trim * n))


def trimmed_mean(x: Sequence[float], trim: float = TRIM) -> float:
    x = np.sort(np.asarray(x, float))
    g = trim_count(len(x), trim)
    return float(x[g:len(x) - g].mean())


def winsorized_ss(x: Sequence[float], trim: float = TRIM) -> float:
    """Sum of squared deviations of the winsorized sample: (n - 1) * winsorized variance."""
    x = np.sort(np.asarray(x, float))
    g = trim_count(len(x), trim)
    w = np.clip(x, x[g], x[len(x) - g - 1])
    return float(((w - w.mean()) ** 2).sum())


@dataclasses.dataclass
class StepsTest:
    """Outcome of the steps-to-target rule on one candidate/reference pair of samples."""

    candidate_mean: float
    reference_mean: float
    relative_difference: float
    spread: float
    t: float
    df: int
    p: float
    tolerance: float
    significant: bool
    fail: bool


def steps_test(candidate: Sequence[float], reference: Sequence[float], *, eval_every: int,
               tolerance: float, alpha: float = ALPHA, trim: float = TRIM) -> StepsTest:
    """Pooled Yuen t-test of trimmed means, failing only beyond the relative tolerance."""
    nc, nr = len(candidate), len(reference)
    hc, hr = nc - 2 * trim_count(nc, trim), nr - 2 * trim_count(nr, trim)
    mc, mr = trimmed_mean(candidate, trim), trimmed_mean(reference, trim)
    df = max(hc + hr - 2, 1)
    pooled = (winsorized_ss(candidate, trim) + winsorized_ss(reference, trim)) / df
    spread = max(math.sqrt(pooled), eval_every / math.sqrt(12.0))
    t = (mc - mr) / (spread * math.sqrt(1.0 / hc + 1.0 / hr))
    p = float(2.0 * stats.t.sf(abs(t), df))
    rel = (mc - mr) / mr
    tol = max(tolerance, eval_every / mr)
    significant = p < alpha
    return StepsTest(mc, mr, rel, spread, t, df, p, tol, significant,
                     bool(significant and abs(rel) > tol))


def steps_of(record: dict[str, Any]) -> tuple[float, bool]:
    """Steps to target of a run (a miss counts as its step budget) and whether it missed."""
    run = record["run"]
    if run["status"] == "reached" and run["steps_to_target"] is not None:
        return float(run["steps_to_target"]), False
    return float(run["max_steps"]), True


def convergence_fails(misses: int, n: int) -> bool:
    """At most one miss in n, and at least one run reaching the target."""
    return misses > min(MAX_MISSES, n - 1)


def false_reject_rate(ref_steps: Sequence[float], ref_missed: Sequence[bool], n_candidate: int, *,
                      eval_every: int, tolerance: float, resamples: int = RESAMPLES,
                      seed: int = 0) -> dict[str, Any]:
    """Share of resampled null draws (candidate and references both drawn from the references)
    that the convergence + steps rule rejects."""
    steps, missed = np.asarray(ref_steps, float), np.asarray(ref_missed, bool)
    rng = np.random.default_rng(seed)
    rejects = 0
    for _ in range(resamples):
        ci = rng.integers(0, len(steps), n_candidate)
        ri = rng.integers(0, len(steps), len(steps))
        if convergence_fails(int(missed[ci].sum()), n_candidate):
            rejects += 1
        elif steps_test(steps[ci], steps[ri], eval_every=eval_every, tolerance=tolerance).fail:
            rejects += 1
    upper = float(stats.beta.ppf(0.95, rejects + 1, resamples - rejects)) if rejects < resamples else 1.0
    return {"rate": rejects / resamples, "upper_95": upper, "rejects": rejects, "resamples": resamples,
            "n_candidate": n_candidate, "n_reference": len(steps),
            "method": "bootstrap: candidate and reference samples drawn with replacement "
                      "from the reference runs, convergence + steps-to-target rule applied"}


# -- tiers --------------------------------------------------------------------------------

def comparability(refset: RefSet, candidate: dict[str, Any]) -> Tier:
    """Hashes and step-defining settings of the candidate (one run's row or the code about to
    run) against the set's; differing hparams are reported, not disqualifying."""
    header, ref_run = refset.header, refset.records[0]["run"]
    mismatches = {}
    for field in ("workload_version", "submission_hash", "data_fingerprint"):
        if candidate[field] != header[field]:
            mismatches[field] = {"reference": header[field], "candidate": candidate[field]}
    for field in SETTINGS:
        if field in candidate and candidate[field] != ref_run[field]:
            mismatches[field] = {"reference": ref_run[field], "candidate": candidate[field]}
    hp_diff = {k: {"reference": header["hparams"].get(k), "candidate": candidate["hparams"].get(k)}
               for k in sorted(set(header["hparams"]) | set(candidate["hparams"]))
               if header["hparams"].get(k) != candidate["hparams"].get(k)}
    compared = "code/data hashes, settings"
    details = {"mismatches": mismatches, "hparams_differ": hp_diff}
    if mismatches:
        what = "; ".join(f"{k} {v['candidate']} != reference {v['reference']}"
                         for k, v in mismatches.items())
        return Tier("comparability", "fail", compared, what, details)
    summary = "same workload version, submission code and data"
    if hp_diff:
        summary += "; hparams differ (" + ", ".join(f"{k} {v['reference']} -> {v['candidate']}"
                                                     for k, v in hp_diff.items()) + ")"
    return Tier("comparability", "pass", compared, summary, details)


def _bit_exact_env(record: dict[str, Any]) -> dict[str, Any]:
    env = record["run"]["environment"]
    out = {k: env.get(k) for k in BIT_EXACT_ENV}
    out["chunk_mode"] = record["run"]["chunk_mode"]
    return out


def _group_size(record: dict[str, Any]) -> int:
    """Trials in the compiled program the run was in (records made before it was stored: 1)."""
    return record["run"].get("group_size") or 1


def environment_line(refset: RefSet, env: dict[str, Any]) -> str:
    """One line saying whether `env` (the candidates' environment fingerprint) is the one the
    references were made in, on the fields bit-exactness needs (BIT_EXACT_ENV), and what a
    difference means: no bit-exact tier, the statistical tiers still judge. Names the
    references' JAX versions when those differ, so the user can install them."""
    ref_env = refset.records[0]["run"]["environment"]
    shown = {k: ref_env.get(k) for k in BIT_EXACT_ENV}
    diffs = [f"{k} {ref_env.get(k)!r} here {env.get(k)!r}" for k in BIT_EXACT_ENV
             if ref_env.get(k) != env.get(k)]
    if not diffs:
        return (f"environment: the references' (jax {shown['jax_version']}, jaxlib "
                f"{shown['jaxlib_version']}, {shown['backend']}, {shown['cpu']}): bit-exact "
                "reproduction is expected")
    line = (f"environment differs from the references' ({'; '.join(diffs)}): same-seed curves "
            "need not match bit for bit, so the bit-exact tier is skipped and only the statistical "
            "tiers judge")
    if (env.get("jax_version"), env.get("jaxlib_version")) != (shown["jax_version"], shown["jaxlib_version"]):
        line += (f"; for a bit-exact check install the references' versions: pip install "
                 f"jax=={shown['jax_version']} jaxlib=={shown['jaxlib_version']} "
                 "(all of them: curvebench's constraints.txt)")
    return line


def bit_exact(refset: RefSet, candidates: list[dict[str, Any]]) -> Tier:
    """Identical eval curves for same-seed runs in the same deterministic environment."""
    compared = "same-seed eval curves"
    ref_env = _bit_exact_env(refset.records[0])
    env_diff = sorted({k for c in candidates for k, v in _bit_exact_env(c).items() if ref_env[k] != v})
    if env_diff:
        return Tier("bit-exact", "skip", compared, "environment differs in " + ", ".join(env_diff),
                    {"differs": env_diff})
    if ref_env["cpu"] is None:
        return Tier("bit-exact", "skip", compared, "CPU model not recorded with the references")
    sizes = sorted({_group_size(c) for c in candidates} | {_group_size(r) for r in refset.records})
    if len(sizes) > 1:
        return Tier("bit-exact", "skip", compared,
                    f"runs of different group sizes ({', '.join(map(str, sizes))} trials per compiled "
                    "program) are not bit-comparable", {"group_sizes": sizes})
    if ref_env["backend"] != "cpu" and "xla_gpu_deterministic_ops=true" not in (ref_env["xla_flags"] or ""):
        return Tier("bit-exact", "skip", compared,
                    f"{ref_env['backend']} without --xla_gpu_deterministic_ops=true")
    if any(c["run"]["hparams"] != refset.header["hparams"] for c in candidates):
        return Tier("bit-exact", "skip", compared, "hparams differ from the references")
    by_seed = {r["run"]["seed"]: r for r in refset.records}
    pairs = [(c, by_seed[c["run"]["seed"]]) for c in candidates if c["run"]["seed"] in by_seed]
    if not pairs:
        return Tier("bit-exact", "skip", compared, "no candidate seed is among the reference seeds")
    differing = []
    for cand, ref in pairs:
        a, b = refs.curve(cand), refs.curve(ref)
        if a != b:
            step = min((s for s in set(a) | set(b) if a.get(s) != b.get(s)), default=None)
            differing.append({"seed": cand["run"]["seed"], "first_step": step,
                              "candidate": a.get(step), "reference": b.get(step)})
    details = {"seeds": [c["run"]["seed"] for c, _ in pairs], "differing": differing}
    if differing:
        first = differing[0]
        return Tier("bit-exact", "fail", compared,
                    f"{len(differing)}/{len(pairs)} seeds differ; seed {first['seed']} first at step "
                    f"{first['first_step']}: {first['candidate']} vs {first['reference']}", details)
    return Tier("bit-exact", "pass", compared, f"{len(pairs)}/{len(pairs)} seeds identical", details)


def convergence(refset: RefSet, candidates: list[dict[str, Any]]) -> Tier:
    misses = [c["run"]["seed"] for c in candidates if steps_of(c)[1]]
    ref_misses = sum(steps_of(r)[1] for r in refset.records)
    n = len(candidates)
    summary = (f"candidate reached {n - len(misses)}/{n} (at most {min(MAX_MISSES, n - 1)} miss "
               f"allowed); references {len(refset.records) - ref_misses}/{len(refset.records)}")
    status = "fail" if convergence_fails(len(misses), n) else "pass"
    return Tier("convergence", status, "runs reaching target", summary,
                {"candidate_misses": misses, "reference_misses": ref_misses})


def steps_tier(refset: RefSet, candidates: list[dict[str, Any]]) -> Tier:
    eval_every = refset.records[0]["run"]["eval_every"]
    cand = [steps_of(c)[0] for c in candidates]
    ref = [steps_of(r)[0] for r in refset.records]
    result = steps_test(cand, ref, eval_every=eval_every,
                        tolerance=refset.header["steps_tolerance"])
    summary = (f"trimmed mean {result.candidate_mean:g} vs {result.reference_mean:g} "
               f"({result.relative_difference:+.0%}, tolerance {result.tolerance:.0%}); "
               f"t={result.t:.2f}, df={result.df}, p={result.p:.3g}")
    status = "fail" if result.fail else "pass"
    if result.significant and not result.fail:
        summary += " (significant but within tolerance)"
    return Tier("steps-to-target", status, "steps to target (Yuen t-test)", summary,
                {**dataclasses.asdict(result), "candidate_steps": cand, "reference_steps": ref,
                 "alpha": ALPHA, "trim": TRIM})


def _band_outliers(points: dict[Any, list[float]],
                   candidates: dict[Any, list[tuple[int, float]]]) -> list[dict[str, Any]]:
    """Candidate values outside the references' envelope at the same point (>= 2 references)."""
    outside = []
    for point, values in points.items():
        if len(values) < 2:
            continue
        lo, hi = min(values), max(values)
        pad = BAND_WIDEN * (hi - lo) + 1e-9 * max(1.0, abs(hi))
        for seed, v in candidates.get(point, ()):
            if v is None or not lo - pad <= v <= hi + pad:
                outside.append({"point": list(point) if isinstance(point, tuple) else point,
                                "seed": seed, "value": v, "band": [lo - pad, hi + pad]})
    return outside


def curve_band(refset: RefSet, candidates: list[dict[str, Any]], metric: str) -> Tier:
    ref_points: dict[int, list[float]] = {}
    for r in refset.records:
        for step, m in refs.curve(r).items():
            if m.get(metric) is not None:
                ref_points.setdefault(step, []).append(m[metric])
    cand_points: dict[int, list[tuple[int, float]]] = {}
    for c in candidates:
        for step, m in refs.curve(c).items():
            cand_points.setdefault(step, []).append((c["run"]["seed"], m.get(metric)))
    outside = _band_outliers(ref_points, cand_points)
    checked = sum(len(v) for k, v in cand_points.items() if len(ref_points.get(k, ())) >= 2)
    compared = f"{metric} per eval step"
    if not checked:
        return Tier("eval-curve band", "skip", compared, "no eval step shared with >= 2 references")
    summary = f"{len(outside)}/{checked} candidate points outside the band"
    if outside:
        o = outside[0]
        summary += f" (first: seed {o['seed']} step {o['point']} = {o['value']:.4g})"
    return Tier("eval-curve band", "warn" if outside else "pass", compared, summary,
                {"outside": outside, "checked": checked})


def curvature_band(refset: RefSet, candidates: list[dict[str, Any]]) -> Tier:
    def points(records):
        out: dict[tuple, list] = {}
        for r in records:
            for snap in r["curvature"]:
                for name, v in snap["metrics"].items():
                    out.setdefault((snap["kind"], snap["step"], name), []).append(
                        (r["run"]["seed"], v))
        return out

    ref = {k: [v for _, v in vs if v is not None] for k, vs in points(refset.records).items()}
    cand = points(candidates)
    compared = "curvature scalars"
    checked = sum(len(v) for k, v in cand.items() if len(ref.get(k, ())) >= 2)
    if not checked:
        why = ("no curvature snapshots in the references" if not ref
               else "no curvature snapshot shared by the candidate and >= 2 references")
        return Tier("curvature band", "skip", compared, why)
    outside = _band_outliers(ref, cand)
    summary = f"{len(outside)}/{checked} candidate values outside the band"
    return Tier("curvature band", "warn" if outside else "pass", compared, summary,
                {"outside": outside, "checked": checked})


# -- choosing the set and putting it together ---------------------------------------------

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
        if run["status"] not in refs.FINISHED:
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
