"""Where compile time goes, from JAX's own timing events: tracing (jaxpr), lowering (jaxpr to
MLIR) and XLA's backend compile, per program name, while a `CompileClock` is open.

JAX reports each as a time span (jax.monitoring); a jit traced inside another one's trace
reports a span inside its parent's, so totals are the union of the spans, not their sum.
Used by benchmarks/startup.py and benchmarks/first_snapshot.py.
"""

from __future__ import annotations

import collections

import jax

#: jax._src.dispatch's event names -> stage
STAGES = {"/jax/core/compile/jaxpr_trace_duration": "trace",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
          "/jax/core/compile/backend_compile_duration": "xla"}


def union_s(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of (start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def program_name(fun_name: str) -> str:
    """Lowering and XLA name a program `jit(<function>)` (or `jit_<function>`); tracing uses
    the bare function name."""
    for prefix, suffix in (("jit(", ")"), ("jit_", "")):
        if fun_name.startswith(prefix) and fun_name.endswith(suffix):
            return fun_name[len(prefix):len(fun_name) - len(suffix)]
    return fun_name


class CompileClock:
    """Collects trace / lower / XLA spans (time.time() start and end) while open."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, float, float]] = []  # (stage, program, start, end)

    def _on_span(self, event: str, start: float, end: float, **kwargs) -> None:
        if event in STAGES:
            self.spans.append((STAGES[event], program_name(str(kwargs.get("fun_name", "?"))),
                               start, end))

    def __enter__(self) -> CompileClock:
        jax.monitoring.register_event_time_span_listener(self._on_span)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_time_span_listener(self._on_span)

    def stage_totals(self) -> dict[str, float]:
        """Seconds per stage (nested spans counted once) and "compile", all three together."""
        out = {stage: union_s([(a, b) for s, _, a, b in self.spans if s == stage])
               for stage in ("trace", "lower", "xla")}
        out["compile"] = union_s([(a, b) for _, _, a, b in self.spans])
        return out

    def outermost(self) -> list[tuple[str, str, float, float]]:
        """The spans not inside another span of the same stage (a nested jit's tracing is
        part of its parent's)."""
        out = []
        for stage in ("trace", "lower", "xla"):
            reach = float("-inf")
            for span in sorted((x for x in self.spans if x[0] == stage), key=lambda x: (x[2], -x[3])):
                if span[3] > reach:
                    out.append(span)
                    reach = span[3]
        return out

    def by_program(self, known: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
        """Seconds per stage per program (outermost spans); programs whose name is not in
        `known` (when given) are summed as "other" (op-by-op dispatch of jnp / jax.random)."""
        out: dict[str, dict[str, float]] = collections.defaultdict(
            lambda: {"trace": 0.0, "lower": 0.0, "xla": 0.0})
        for stage, program, start, end in self.outermost():
            out[program if not known or program in known else "other"][stage] += end - start
        return dict(out)

    def programs(self) -> int:
        """Programs XLA compiled (or took from the persistent cache)."""
        return sum(stage == "xla" for stage, *_ in self.spans)
