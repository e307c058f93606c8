"""Run in a subprocess with 8 host devices: the fused loss on a (data x model) = (2 x 4) mesh.

`hidden` batch-sharded, `heads` (and `bias`) sharded on the vocabulary (`card`) or on the codebooks (`K`): the loss
and its gradients equal the unsharded ones, and no collective of the compiled program moves a `card`-sized array
(no all-gather of logits or heads). Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import re

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jax_patterns as jp  # noqa: E402
from jax_patterns import lm  # noqa: E402

BATCH, N_Q, T, DIM, CARD = 4, 4, 12, 16, 64


def loss(hidden, heads, bias, codes, pattern):
    return lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, bias=bias, block_steps=4)[0]


def main() -> None:
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    pattern = jp.DelayedPatternProvider(N_Q).get_pattern(T)
    rng = np.random.default_rng(0)
    codes = jnp.asarray(rng.integers(0, CARD, (BATCH, N_Q, T)), jnp.int32)
    hidden = jnp.asarray(rng.normal(size=(BATCH, pattern.valid_steps, DIM)), jnp.float32)
    heads = jnp.asarray(rng.normal(size=(N_Q, DIM, CARD)) * 0.5, jnp.float32)
    bias = jnp.asarray(rng.normal(size=(N_Q, CARD)), jnp.float32)
    grad_fn = jax.value_and_grad(loss, argnums=(0, 1, 2))
    value, grads = jax.jit(grad_fn, static_argnums=(4,))(hidden, heads, bias, codes, pattern)
    report = {}
    for split, heads_spec, bias_spec in (
        ("card", P(None, None, "model"), P(None, "model")),
        ("codebooks", P("model", None, None), P("model", None)),
    ):
        args = (
            jax.device_put(hidden, NamedSharding(mesh, P("data"))),
            jax.device_put(heads, NamedSharding(mesh, heads_spec)),
            jax.device_put(bias, NamedSharding(mesh, bias_spec)),
            jax.device_put(codes, NamedSharding(mesh, P("data"))),
        )
        jitted = jax.jit(grad_fn, static_argnums=(4,))
        hlo = jitted.lower(*args, pattern).compile().as_text() or ""
        sharded_value, sharded_grads = jitted(*args, pattern)
        # the result shape of every all-gather: none may have a `card`-sized axis (the logits, the heads)
        gathers = [line.strip() for line in hlo.splitlines() if re.search(r"= \S+ all-gather(-start)?\(", line)]
        card_sized = [g[:160] for g in gathers if re.search(rf"[\[,]{CARD}[,\]]", g.split(" all-gather")[0])]
        report[split] = {
            "loss_close": bool(np.allclose(np.asarray(sharded_value), np.asarray(value), rtol=1e-5)),
            "grads_close": all(
                bool(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6))
                for a, b in zip(sharded_grads, grads)
            ),
            "card_sized_gathers": card_sized,
            "gathers": len(gathers),
            "collectives": sorted({m for m in re.findall(r"(all-gather|all-reduce|reduce-scatter|all-to-all)", hlo)}),
            "heads_grad_sharded": not sharded_grads[1].sharding.is_fully_replicated,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
