"""The registry of workloads, addressed by name and variant (``name:knob=value,...``)."""

from __future__ import annotations

from harness import threefry_cpu
from harness.spec import SpecError, Workload
from workloads.algoperf_mnist import AlgoPerfMnist
from workloads.cifar import CifarResNet18, CifarResNetLN, CifarSimpleCNN
from workloads.mnist_mlp import FashionMnistMlp, MnistMlp
from workloads.ogbg_molpcba import OgbgMolpcba
from workloads.toy import UV, LowRank, NoisyQuadratic

# every draw of the workloads, runner and curvature: the same bits, faster on XLA:CPU
threefry_cpu.install()

REGISTRY: dict[str, type[Workload]] = {
    w.name: w for w in (MnistMlp, FashionMnistMlp, AlgoPerfMnist, OgbgMolpcba, CifarSimpleCNN, CifarResNetLN,
                        CifarResNet18, LowRank, UV, NoisyQuadratic)}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``name:k=v,k=v`` into the name and the raw knob values."""
    name, _, rest = spec.strip().partition(":")
    knobs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"bad variant item {item!r} in {spec!r}; expected knob=value")
        if key.strip() in knobs:
            raise SpecError(f"knob {key.strip()!r} given twice in {spec!r}")
        knobs[key.strip()] = value.strip()
    return name, knobs


def get_workload(spec: str) -> Workload:
    """Instantiate a registered workload variant; unknown names and knobs list the valid ones."""
    name, knobs = parse_spec(spec)
    if name not in REGISTRY:
        raise SpecError(f"unknown workload {name!r}; valid workloads: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**knobs)
