"""The public-API fuzz's known failures: the defects it found, each removed by the commit that fixes it.

`KNOWN` maps (entry, argument) to the first failure (the value, and what happened); `test_fuzz.py` marks those
cases xfail (strict: a fixed pair must leave the list). `VALID_KNOWN`: entries whose valid call fails. `SKIPPED`:
pairs that cannot run before their fix (the process aborts, or the call leaks a pipe or a thread that fails the
test after it).
"""

KNOWN: dict[tuple[str, str], str] = {}
VALID_KNOWN: dict[str, str] = {}
SKIPPED: dict[tuple[str, str], str] = {}
