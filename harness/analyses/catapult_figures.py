"""The catapult analysis's report section (Kalra & Barkeshli, 2023): the early-training phase
diagram (c × width per model family: monotone / catapult / divergent, with the mean c_loss
and c_max per width), the training loss relative to step 0 over c, the verdicts and the
critical constants per model and seed. Drawn from a result's stored numbers and its runs'
training losses, for the analysis's own grid or any sweep it judged."""

from __future__ import annotations

import statistics
import numpy as np

from harness.analyses.catapult_judge import Phase, _fmt, critical_constants, family, width

NAME = "catapult"


def section(result, db):
    """The report section of a `harness.analyses.catapult.CatapultResult`: verdicts, the phase
    diagram per family, loss ratios of the widest uv."""
    from matplotlib.figure import Figure as PlotFigure

    from harness.analyses.verdict import claims_table
    from harness.report import Figure, Provenance, Section, Table, mark_data

    runs = db.get_runs([p.run_id for p in result.phases])
    prov = Provenance.of(runs, f"train_losses and Hessian snapshots (λ_H^0 at step 0 or measured by "
                               f"`curvebench analyze {NAME}`; λ_max at the window's end) of sweep "
                               f"{result.sweep_id}")
    families = list(dict.fromkeys(family(p.model) for p in result.phases))
    colours = {Phase.MONOTONE: "tab:blue", Phase.CATAPULT: "tab:orange", Phase.DIVERGES: "tab:red"}
    plot = PlotFigure(figsize=(5 * len(families), 3.6), layout="constrained")
    axes = plot.subplots(1, len(families), squeeze=False)[0]
    crit = critical_constants(result.phases)
    for ax, fam in zip(axes, families):
        members = [p for p in result.phases if family(p.model) == fam]
        for phase in Phase:
            pts = [(p.c + 0.06 * (p.seed % 3 - 1), width(p.model)) for p in members if p.phase == phase]
            if pts:
                mark_data(ax.scatter(*zip(*pts), c=colours[phase], label=phase.value, s=28))
        for index, marker, label in ((0, "<", "mean c_loss"), (1, ">", "mean c_max")):
            per_model: dict[str, list[float]] = {}
            for (m, _), v in crit.items():
                if family(m) == fam and v[index] is not None:
                    per_model.setdefault(m, []).append(v[index])
            if per_model:
                ws = sorted(per_model, key=width)
                mark_data(ax.plot([statistics.mean(per_model[m]) for m in ws], [width(m) for m in ws],
                                  marker=marker, color="black", lw=1, label=label))
        ax.axvline(2.0, color="grey", ls=":", lw=1)
        ax.axvline(4.0, color="grey", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set(xlabel="c = η λ_H^0", ylabel="width", title=fam)
        ax.legend(fontsize=7)
    uv = sorted({p.model for p in result.phases if family(p.model) == "uv"}, key=width)
    figures = [Figure("Early-training phase diagram (c × width)",
                      "Each run's phase from its training losses (monotone / catapult / diverges; "
                      "seeds side by side), with the mean c_loss and c_max per width; dotted: c = 2, "
                      "dashed: c = 4.", prov, plot, slug="catapult-phases")]
    show = uv[-1] if uv else result.phases[0].model
    curves = PlotFigure(figsize=(6, 3.6), layout="constrained")
    ax = curves.subplots()
    seed = min(p.seed for p in result.phases)
    for p in (q for q in result.phases if q.model == show and q.seed == seed):
        _, losses = db.losses(p.run_id)
        ratio = np.asarray(losses, np.float64) / float(losses[0])
        mark_data(ax.plot(np.arange(ratio.size), np.clip(ratio, 1e-12, 1e6), label=f"c={p.c:g}", lw=1))
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="L_t / L_0", title=f"{show}, seed {seed}")
    ax.legend(fontsize=6, ncol=2)
    figures.append(Figure("Training loss relative to step 0 over the c grid",
                          f"{show}: L_t/L_0 per c (a catapult rises above 1 then falls).",
                          prov, curves, slug="catapult-losses"))
    rows = tuple((m, str(s), _fmt([cl]), _fmt([cm]),
                  f"{next(p.lambda0 for p in result.phases if p.model == m and p.seed == s):.4g}")
                 for (m, s), (cl, cm) in crit.items())
    return Section(f"Catapult phase diagram (Kalra & Barkeshli, 2023) — sweep {result.sweep_id[:8]}",
                   text=f"η = c/λ_H^0 over c ∈ {{{_fmt(result.config.c_grid)}}}, "
                        f"{result.config.steps} steps of `{result.config.submission}`, seeds "
                        f"{_fmt(result.config.seeds)}.",
                   figures=figures,
                   tables=[claims_table(result.claims),
                           Table(("model", "seed", "c_loss", "c_max", "λ_H^0"), rows)])
