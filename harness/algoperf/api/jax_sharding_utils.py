"""AlgoPerf's `algoperf.jax_sharding_utils`: shardings over a one-axis ("batch") mesh of every
device, replicated or split along the leading (batch) dimension."""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def _mesh() -> jax.sharding.Mesh:
    return jax.sharding.Mesh(jax.devices(), ("batch",))


def get_replicate_sharding() -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(_mesh(), P())


def get_batch_dim_sharding() -> NamedSharding:
    """The leading axis is split across the devices."""
    return NamedSharding(_mesh(), P("batch"))


def shard_along_batch_dim(x: Any) -> Any:
    """Put every leaf of `x` on the devices, split along its leading axis."""
    sharding = get_batch_dim_sharding()
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, sharding), x)


def replicate(x: Any) -> Any:
    """Put every leaf of `x` on every device."""
    sharding = get_replicate_sharding()
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, sharding), x)


def display_shard_info(x: jax.Array) -> None:
    """Print which device holds which part of `x`."""
    for shard in x.addressable_shards:
        print(f"shard.device: {shard.device}, index: {shard.index}, replica_id: {shard.replica_id}.")
