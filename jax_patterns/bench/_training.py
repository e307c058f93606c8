"""Training: real tokens per second, packed against padded, and 2 processes against 1 (the `train` command)."""

from __future__ import annotations

import json
import sys

import jax_patterns as jp
from jax_patterns.bench._report import Row


def _train_subprocess(processes: int, devices: int, steps: int, batch: int, max_frames: int) -> dict:
    """The last JSON record of `python -m jax_patterns train` over `processes` local processes."""
    import os
    import subprocess

    argv = [sys.executable, "-m", "jax_patterns", "train", "--steps", str(steps), "--batch-size", str(batch), "--pack"]
    argv += ["--log-every", str(steps), "--max-frames", str(max_frames)]
    argv += ["--local-processes", str(processes)] if processes > 1 else []
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise RuntimeError(f"train failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_training(steps: int, batch: int = 8, max_frames: int = 64, dim: int = 256) -> list[Row]:
    """Real (scored) tokens trained per second, packed vs padded; 2 processes vs 1 (jax.distributed, CPU).

    Example lengths are uniform over 10-100% of `max_frames`. The rates are
    those of `python -m jax_patterns train` after its first (compiling) step.
    Packed vs padded uses a `dim`-wide model: with the CLI's default 64 the
    host data pipeline, not the model, bounds a 2-core CPU. The process rows
    use the CLI's defaults.
    """
    from jax_patterns.train import Options, train

    def rate(pack: bool) -> dict:
        options = Options(steps=steps, batch_size=batch, pack=pack, log_every=steps, max_frames=max_frames, dim=dim)
        return train(options)[-1]

    padded, packed = rate(False), rate(True)
    shape = f"{batch}x4x{jp.segment_steps(jp.DelayedPatternProvider(4), max_frames)}"
    rows = [
        Row(
            f"train {steps} steps, dim {dim}, packed vs padded (ms per 1000 real tokens)",
            shape,
            "float32",
            1e6 / max(packed["tokens_per_s"], 1e-9),
            None,
            None,
            None,
            0,
            extra={
                "packed_tokens_per_s": packed["tokens_per_s"],
                "padded_tokens_per_s": padded["tokens_per_s"],
                "packed_vs_padded": packed["tokens_per_s"] / padded["tokens_per_s"],
                "packed_padding_fraction": packed["padding_fraction"],
                "padded_padding_fraction": padded["padding_fraction"],
            },
        )
    ]
    one = _train_subprocess(1, 2, steps, batch, max_frames)
    two = _train_subprocess(2, 1, steps, batch, max_frames)
    rows.append(
        Row(
            f"train {steps} steps, 2 processes x 1 device (ms per 1000 real tokens)",
            shape,
            "float32",
            1e6 / max(two["tokens_per_s"], 1e-9),
            None,
            None,
            None,
            0,
            extra={
                "one_process_tokens_per_s": one["tokens_per_s"],
                "two_processes_tokens_per_s": two["tokens_per_s"],
                "step_time_two_vs_one": one["tokens_per_s"] / two["tokens_per_s"],
                "same_loss": float(abs(one["loss"] - two["loss"]) <= 1e-5 * abs(one["loss"])),
            },
        )
    )
    return rows
