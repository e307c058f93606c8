"""Run in a subprocess with 8 host devices: every op keeps batch sharding and compiles no collectives.

Prints one JSON object: per op, the output sharding specs and the collectives found in the HLO.
"""

from __future__ import annotations

import json
import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jax_patterns as jp  # noqa: E402

COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")
NAN = float("nan")


def check_provider(provider, mesh: Mesh, batch: NamedSharding) -> dict:
    """Every op of one provider's pattern, with and without lengths, on batch-sharded inputs."""
    report: dict = {}
    pattern = provider.get_pattern(24)
    steps = pattern.valid_steps
    rng = np.random.default_rng(0)
    z = jax.device_put(jnp.asarray(rng.integers(0, 100, (16, 4, 24)), jnp.int32), batch)
    s = jax.device_put(jnp.asarray(rng.integers(0, 100, (16, 4, steps)), jnp.int32), batch)
    logits_last = jax.device_put(jnp.ones((16, 4, steps, 8), jnp.float32), batch)
    logits_first = jax.device_put(jnp.ones((16, 8, 4, steps), jnp.float32), batch)
    lengths = jax.device_put(jnp.asarray(rng.integers(0, 25, 16), jnp.int32), batch)
    cases = {
        "build": (lambda x, n: pattern.build_pattern_sequence(x, -1, True, lengths=n), z),
        "revert": (lambda x, n: pattern.revert_pattern_sequence(x, -1, True, lengths=n), s),
        "logits[-1]": (
            lambda x, n: pattern.revert_pattern_logits(x, NAN, True, card_axis=-1, lengths=n),
            logits_last,
        ),
        "logits[1]": (
            lambda x, n: pattern.revert_pattern_logits(x, NAN, True, card_axis=1, lengths=n),
            logits_first,
        ),
    }
    name = type(provider).__name__
    for op_name, (op, x) in cases.items():
        for with_lengths in (False, True):
            n = lengths if with_lengths else None
            fn = jax.jit(op)
            hlo = fn.lower(x, n).compile().as_text() or ""
            fn(x, n)  # compile, then run again with no host transfer allowed
            with jax.transfer_guard("disallow"):
                values, _, mask = fn(x, n)
                values.block_until_ready()
            report[f"{name}/{op_name}/{'lengths' if with_lengths else 'fixed'}"] = {
                "values_batch_sharded": values.sharding.is_equivalent_to(batch, values.ndim),
                "mask_batch_sharded": mask.sharding.is_equivalent_to(batch, mask.ndim) if with_lengths else None,
                "collectives": [c for c in COLLECTIVES if c in hlo],
            }
    # shard_map: each device runs the op on its own slice of the batch
    mapped = jax.jit(
        jax.shard_map(
            lambda x, n: pattern.build_pattern_sequence(x, -1, lengths=n)[0],
            mesh=mesh,
            in_specs=(P("data"), P("data")),
            out_specs=P("data"),
        )
    )
    expected = pattern.build_pattern_sequence(np.asarray(z), -1, lengths=np.asarray(lengths))[0]
    report[f"{name}/shard_map"] = {
        "equal": bool(np.array_equal(np.asarray(mapped(z, lengths)), np.asarray(expected))),
        "collectives": [c for c in COLLECTIVES if c in (mapped.lower(z, lengths).compile().as_text() or "")],
    }
    return report


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    batch = NamedSharding(mesh, P("data"))
    report: dict = {}
    for provider in (jp.DelayedPatternProvider(4), jp.CoarseFirstPattern(4, [0, 1, 2]), jp.MusicLMPattern(4, 2)):
        report.update(check_provider(provider, mesh, batch))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
