"""`python -m jax_patterns train`: flags, and `--local-processes` (P local processes joined by jax.distributed).

The launcher starts P copies of the same command, each with `--coordinator
127.0.0.1:PORT --num-processes P --process-id i`: exactly what a cluster
launcher passes on many hosts. Process 0's stdout (the JSON lines) is passed
through; every process's stderr is passed through with its id. If a process
fails, the others are stopped and the launcher exits with its exit code: a
crashed worker never leaves the rest waiting.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import typing as tp

from jax_patterns._checks import check_int
from jax_patterns.train._loop import (
    NUM_HEADS,
    CheckpointError,
    Options,
    check_address,
    check_checkpoint_dir,
    finite,
    print_record,
    train,
)

LOCAL_PROCESSES_MAX = 1024
"""The most local processes `launch` starts."""

INT32_MAX = 2**31 - 1


def add_arguments(parser: tp.Any) -> None:
    """The flags of `python -m jax_patterns train`."""
    parser.add_argument("--steps", type=int, required=True, help="optimizer steps in all")
    parser.add_argument("--batch-size", type=int, required=True, help="rows per global batch (all processes)")
    parser.add_argument("--seed", type=int, default=0, help="model, data order and corpus seed, in [0, 2**32)")
    parser.add_argument("--pack", action="store_true", help="pack several examples per row (default: one, padded)")
    parser.add_argument("--checkpoint-dir", metavar="DIR", help="save to DIR, and resume from its latest checkpoint")
    parser.add_argument("--stop-after", type=int, metavar="M", help="stop after step M, as a preempted job would")
    parser.add_argument("--log-every", type=int, default=10, help="steps between JSON lines (and the last step)")
    parser.add_argument("--save-every", type=int, default=50, help="steps between checkpoints (and the last step)")
    parser.add_argument("--max-frames", type=int, default=64, help="longest example (timesteps)")
    parser.add_argument(
        "--loss",
        choices=("fused", "unfused"),
        default="fused",
        help="fused: the loss through the heads, without the logits (default); unfused: on the logits",
    )
    parser.add_argument("--dim", type=int, default=64, help="model width, a multiple of 4 (2 layers, 4 heads)")
    many = parser.add_mutually_exclusive_group()
    many.add_argument("--local-processes", type=int, metavar="P", help="run P local processes (jax.distributed)")
    many.add_argument("--coordinator", metavar="HOST:PORT", help="the coordinator of a multi-process run")
    parser.add_argument("--num-processes", type=int, default=1, help="processes of a multi-process run")
    parser.add_argument("--process-id", type=int, default=0, help="this process's id in a multi-process run")
    parser.add_argument(
        "--coordinator-timeout",
        type=int,
        default=120,
        metavar="SECONDS",
        help="how long a process waits to join a multi-process run before it gives up (default 120)",
    )


def options_of(args: tp.Any) -> Options:
    """The run's `Options`, every flag checked first.

    Raises:
      ValueError: naming the flag, its value and what it must be (one line, exit 2).
    """
    counts = ["steps", "batch_size", "log_every", "save_every", "max_frames", "dim", "num_processes"]
    counts += ["coordinator_timeout", "local_processes"]
    for name in counts:
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"`--{name.replace('_', '-')}` must be >= 1, got {getattr(args, name)}")
    for name in (*counts, "stop_after", "process_id"):  # every count is an int32 on the device
        if getattr(args, name) is not None and getattr(args, name) > INT32_MAX:
            raise ValueError(f"`--{name.replace('_', '-')}` must be below 2**31, got {getattr(args, name)}")
    if args.local_processes is not None and args.local_processes > LOCAL_PROCESSES_MAX:
        raise ValueError(f"`--local-processes` must be <= {LOCAL_PROCESSES_MAX}, got {args.local_processes}")
    if args.checkpoint_dir is not None and not args.checkpoint_dir.strip():
        raise ValueError(f"`--checkpoint-dir` must name a directory, got {args.checkpoint_dir!r}")
    if args.seed < 0:
        raise ValueError(f"`--seed` must be >= 0, got {args.seed}")
    if args.seed >= 2**32:
        raise ValueError(f"`--seed` must be below 2**32 (grain's shuffle seeds are 32-bit), got {args.seed}")
    if args.dim % NUM_HEADS:
        raise ValueError(f"`--dim`={args.dim} must be a multiple of the model's {NUM_HEADS} attention heads")
    if args.stop_after is not None and not 1 <= args.stop_after <= args.steps:
        raise ValueError(f"`--stop-after`={args.stop_after} must lie in [1, --steps={args.steps}]")
    if args.coordinator is not None:
        check_coordinator(args.coordinator)
    if args.coordinator is None and (args.num_processes != 1 or args.process_id != 0):
        raise ValueError("`--num-processes` and `--process-id` go with `--coordinator HOST:PORT`")
    if not 0 <= args.process_id < args.num_processes:
        raise ValueError(f"`--process-id`={args.process_id} must lie in [0, --num-processes={args.num_processes})")
    return Options(
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        pack=args.pack,
        checkpoint_dir=args.checkpoint_dir,
        stop_after=args.stop_after,
        coordinator=args.coordinator,
        coordinator_timeout=args.coordinator_timeout,
        num_processes=args.num_processes,
        process_id=args.process_id,
        log_every=args.log_every,
        save_every=args.save_every,
        max_frames=args.max_frames,
        dim=args.dim,
        loss=args.loss,
    )


def check_coordinator(address: tp.Any) -> None:
    """`--coordinator` must be HOST:PORT with a port in [1, 65535] (jax.distributed's own error is a traceback)."""
    check_address("--coordinator", str(address))


def importable(module: str) -> bool:
    """Whether `module` imports (a missing optional dependency is named, never a traceback)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def missing_extra() -> str | None:
    """The message naming the `train` extra when one of its packages is missing, else None."""
    missing = [m for m in ("grain", "optax", "orbax.checkpoint") if not importable(m)]
    if not missing:
        return None
    return f"`train` needs {', '.join(missing)}; install them with: pip install 'jax_patterns[train]'"


def run(args: tp.Any, argv: tp.Sequence[str]) -> int:
    """Runs the command; returns the exit code.

    Raises:
      ValueError: a user error (a bad flag or checkpoint directory): one line, exit 2.
    """
    message = missing_extra()
    if message is not None:
        raise ValueError(message)
    try:
        return _run(args, argv)
    except CheckpointError as err:
        # orbax may leave non-daemon threads waiting on the failed write: leave at once, with the error
        print(f"python -m jax_patterns train: error: {err}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)


def _run(args: tp.Any, argv: tp.Sequence[str]) -> int:
    options = options_of(args)  # every flag checked here, before any process starts or anything trains
    if args.checkpoint_dir is not None:
        check_checkpoint_dir(args.checkpoint_dir)
    if args.local_processes is not None:
        return launch(args.local_processes, _without_local_processes(argv))
    if options.coordinator is None:
        train(options, emit=print_record)
        return 0
    # native libraries (gloo) print to file descriptor 1: keep stdout for the JSON lines alone
    records = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        train(options, emit=lambda record: print(json.dumps(record), file=records, flush=True))
    finally:
        records.close()
    return 0


def _without_local_processes(argv: tp.Sequence[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--local-processes":
            skip = True
        elif not item.startswith("--local-processes="):
            out.append(item)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pump(stream: tp.Any, out: tp.Any, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        out.write(prefix + line)
        out.flush()


def launch(processes: int, argv: tp.Sequence[str], timeout: float | None = None) -> int:
    """Runs `python -m jax_patterns <argv>` as `processes` local processes of one jax.distributed run.

    Returns 0 when every process succeeds; otherwise the first failing
    process's exit code (the others are stopped). `timeout` (seconds) bounds the
    whole run. The children's pipes are closed before it returns.

    Raises:
      TypeError: `processes` not an int, `argv` not a list of str, `timeout` not a number.
      ValueError: `processes` outside [1, 1024], a negative or NaN `timeout`.
    """
    processes = check_int("processes", processes, minimum=1, maximum=LOCAL_PROCESSES_MAX)
    if isinstance(argv, (str, bytes)) or not isinstance(argv, (list, tuple)):
        raise TypeError(f"`argv` must be a list of str, got {argv!r}")
    for i, item in enumerate(argv):
        if not isinstance(item, str):
            raise TypeError(f"`argv[{i}]` must be a str, got {item!r}")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"`timeout` must be a number of seconds or None, got {timeout!r}")
        if not (finite(timeout) and timeout >= 0):
            raise ValueError(f"`timeout` must be a finite number of seconds >= 0, got {timeout}")
    address = f"127.0.0.1:{_free_port()}"
    children = []
    pumps = []
    for i in range(processes):
        command = [sys.executable, "-m", "jax_patterns", *argv]
        command += ["--coordinator", address, "--num-processes", str(processes), "--process-id", str(i)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        print(f"[launcher] process {i} started (pid {child.pid})", file=sys.stderr, flush=True)
        children.append(child)
        for stream, out, prefix in ((child.stdout, sys.stdout, ""), (child.stderr, sys.stderr, f"[process {i}] ")):
            if stream is child.stdout and i:
                out, prefix = sys.stderr, f"[process {i} stdout] "
            pump = threading.Thread(target=_pump, args=(stream, out, prefix), daemon=True)
            pump.start()
            pumps.append(pump)
    deadline = None if timeout is None else time.monotonic() + timeout
    code = 0
    try:
        while None in [c.poll() for c in children]:  # every child polled (`any` would stop at the first)
            failed = [(i, c.returncode) for i, c in enumerate(children) if c.returncode not in (None, 0)]
            if failed:
                i, code = failed[0]
                print(f"[launcher] process {i} exited with code {code}; stopping the others", file=sys.stderr)
                break
            if deadline is not None and time.monotonic() > deadline:
                print(f"[launcher] the run took longer than {timeout} s; stopping it", file=sys.stderr)
                code = 124
                break
            time.sleep(0.1)
        else:
            failed = [(i, c.returncode) for i, c in enumerate(children) if c.returncode != 0]
            if failed:
                i, code = failed[0]
                print(f"[launcher] process {i} exited with code {code}", file=sys.stderr)
    finally:
        _stop(children)
        for pump in pumps:
            pump.join(timeout=5)
        for child in children:  # read to the end (or left behind): closed, so none is left to the collector
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
    return code if code >= 0 else 128 - code  # a signal -N is reported as 128 + N


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    end = time.monotonic() + 5
    for child in children:
        try:
            child.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
