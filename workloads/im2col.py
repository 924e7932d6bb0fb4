"""Convolution as one matrix product: the image's patches (im2col) times the flattened kernel.

`im2col_conv` has `jax.lax.conv_general_dilated`'s signature, so a flax `nn.Conv` takes it as its
`conv_general_dilated`. It computes the same function with other ops: the input padded, its
kh·kw shifted (strided) views concatenated along channels, and one `dot_general` with the
(kh·kw·in, out) kernel. Results agree with the convolution to float rounding (not bit for bit).

Why by hand: XLA:CPU computes convolutions, and above all their derivatives (the transposed
and weight-gradient convolutions of a backward pass, twice over in a Hessian-vector product),
on a slow path, while its matrix products are fast. Measured on 2 CPU cores (jax 0.10.2),
SimpleCNN on 256 CIFAR-shaped images, one jitted Hessian-vector product: 3.06 s with lax
convolutions, 1.35 s as patches x kernel (a one-off script, one run; `python3
benchmarks/conv_hvp_variants.py --examples 256` measures the same pair as `hvp` and `im2col`). No well-kept JAX library offers this as a drop-in convolution.
The curvature operators of the CIFAR workloads use it on CPU (`Workload.for_curvature`);
training keeps lax's convolutions (its numerics are what the references record).

Handled: 2-D, channels-last input (NHWC) and HWIO kernel, any strides, string or explicit
(also negative) padding. Anything else (dilation, groups, other layouts, an output dtype)
goes to `lax.conv_general_dilated` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from jax import lax

_CHANNELS_LAST = ("NHWC", "HWIO", "NHWC")


def _trivial(dilation: Sequence[int] | None) -> bool:
    return dilation is None or all(d == 1 for d in dilation)


def im2col_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                padding: str | Sequence[tuple[int, int]], lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count: int = 1, batch_group_count: int = 1,
                precision=None, preferred_element_type=None) -> jax.Array:
    """`lax.conv_general_dilated(lhs, rhs, ...)` computed as patches x kernel (see the module)."""
    handled = (lhs.ndim == 4 and _trivial(lhs_dilation) and _trivial(rhs_dilation)
               and feature_group_count == 1 and batch_group_count == 1
               and preferred_element_type is None
               and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
               == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _CHANNELS_LAST))
    if not handled:
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count, batch_group_count=batch_group_count,
            precision=precision, preferred_element_type=preferred_element_type)
    kh, kw, cin, cout = rhs.shape
    sh, sw = window_strides
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), window_strides, padding)
    (top, bottom), (left, right) = padding
    x = lax.pad(lhs, lax.full((), 0, lhs.dtype),
                ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    views = [lax.slice(x, (0, i, j, 0), (n, i + sh * (oh - 1) + 1, j + sw * (ow - 1) + 1, cin),
                       (1, sh, sw, 1))
             for i in range(kh) for j in range(kw)]
    patches = views[0] if len(views) == 1 else lax.concatenate(views, 3)
    out = lax.dot_general(patches.reshape(n * oh * ow, kh * kw * cin),
                          rhs.reshape(kh * kw * cin, cout), (((1,), (0,)), ((), ())),
                          precision=precision)
    return out.reshape(n, oh, ow, cout)
