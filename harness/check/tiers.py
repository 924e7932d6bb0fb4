"""The tiers of the regression check, each comparing a candidate's runs with a reference set
and giving one `Tier` outcome (their order and which decide the verdict: harness/check/__init__.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness import refs
from harness.check.statistics import ALPHA, MAX_MISSES, TRIM, convergence_fails, steps_of, steps_test
from harness.refs import RefSet

BAND_WIDEN = 0.5
#: run settings that must match for steps-to-target to mean the same thing
SETTINGS = refs.SETTINGS
#: environment fields that must match for bit-exact reproduction to be expected
BIT_EXACT_ENV = ("jax_version", "jaxlib_version", "backend", "device_kind", "device_count",
                 "xla_flags", "x64", "cpu")


@dataclasses.dataclass
class Tier:
    """One tier's outcome: pass, fail, warn or skip, a one-line summary, and its numbers."""

    name: str
    status: str
    compared: str
    summary: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


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
