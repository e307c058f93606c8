"""What every command of `python -m jax_patterns` shares: a parser whose errors are one line, and flag types.

A command-line mistake is one line on stderr and exit code 2, never a
traceback: `Parser.error` prints no usage block, `int32` refuses what device
arithmetic cannot hold (2**64 would raise OverflowError deep inside numpy),
`path` refuses an empty string (which `if args.flag:` would silently ignore).
"""

from __future__ import annotations

import argparse
import typing as tp

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line (`PROG: error: MESSAGE`) and exit code 2."""

    def error(self, message: str) -> tp.NoReturn:
        """Prints the error in one line on stderr and exits with code 2."""
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def int32(text: str) -> int:
    """A flag's value as an int in int32's range.

    Raises:
      argparse.ArgumentTypeError: not an int, or outside `[-2**31, 2**31 - 1]`.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not INT32_MIN <= value <= INT32_MAX:
        raise argparse.ArgumentTypeError(f"{value} is out of range (an int32 lies in [-2**31, 2**31 - 1])")
    return value


def path(text: str) -> str:
    """A flag's value as a path: a non-empty string.

    Raises:
      argparse.ArgumentTypeError: an empty (or blank) string.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text
