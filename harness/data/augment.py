"""On-device image augmentation, pure and keyed by a PRNG key (jit- and scan-friendly)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop_flip(rng: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
    """Zero-pad NHWC images by `pad` pixels, crop each back to its size at a random offset,
    and flip it left-right with probability 1/2 (the standard CIFAR augmentation)."""
    n, h, w, c = images.shape
    offset_key, flip_key = jax.random.split(rng)
    offsets = jax.random.randint(offset_key, (n, 2), 0, 2 * pad + 1)
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

    cropped = jax.vmap(crop)(padded, offsets)
    flip = jax.random.bernoulli(flip_key, 0.5, (n,))
    return jnp.where(flip[:, None, None, None], cropped[:, :, ::-1, :], cropped)
