"""The public-API fuzz (issue 25): every public callable, every argument, bad values chosen by the test, not by hand.

`public_callables()` lists every public function, class and public method of `jax_patterns`, `lm`, `presets`,
`train` and `models` (classmethods, `__call__`, property setters included); each must have an entry in
`fuzz_table.TABLE` (or a reason in `EXEMPT`). For each entry and each argument, the argument is replaced by every
value of `Arg.mutations` (None, bools, 2.5, NaN, a string, -1, 0, 2**31, 2**63, 2**64, wrong-rank and empty arrays,
int64 codes holding `2**32 + special`, the valid value spelt another way...), then, with hypothesis, by random values
of the same kinds. The contract (`fuzz.Judge.check`): ValueError/TypeError naming the argument, or a correct result
(equal to the valid value's it stands for); never another exception, a hang or a silent truncation.
"""

from __future__ import annotations

import inspect
import typing as tp

import pytest
from fuzz import VALID, Judge
from fuzz_known import KNOWN, SKIPPED, VALID_KNOWN
from fuzz_table import EXEMPT, TABLE, call_of
from hypothesis import given
from hypothesis import strategies as st

import jax_patterns
import jax_patterns.lm
import jax_patterns.models
import jax_patterns.presets
import jax_patterns.train

MODULES = (jax_patterns, jax_patterns.lm, jax_patterns.presets, jax_patterns.train, jax_patterns.models)


def _public_methods(cls: type) -> tp.Iterator[str]:
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("jax_patterns"):
            continue
        for name, raw in vars(klass).items():
            if name in seen or (name.startswith("_") and name != "__call__"):
                continue
            seen.add(name)
            if isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw):
                yield name
            elif isinstance(raw, property) and raw.fset is not None:
                yield f"{name}.setter"


def public_callables() -> list[str]:
    """Every public callable: module functions, classes (their constructors) and their public methods."""
    names = []
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            qualified = f"{module.__name__}.{name}"
            if inspect.isclass(obj):
                names.append(qualified)
                names += [f"{qualified}.{method}" for method in _public_methods(obj)]
            elif callable(obj):
                names.append(qualified)
    return names


def test_every_public_callable_has_an_entry():
    public = public_callables()
    missing = [name for name in public if name not in TABLE and name not in EXEMPT]
    assert not missing, f"public callables without an entry in tests/fuzz_table.py: {missing}"
    stale = sorted((set(TABLE) | set(EXEMPT)) - set(public))
    assert not stale, f"entries of tests/fuzz_table.py that are not public callables: {stale}"
    assert not set(TABLE) & set(EXEMPT)


JUDGE = Judge()
ENTRIES = sorted(TABLE)


def _pairs() -> list[tp.Any]:
    out = []
    for name in ENTRIES:
        for arg in _argument_names(name):
            marks = [pytest.mark.xfail(reason=KNOWN[name, arg], strict=True)] if (name, arg) in KNOWN else []
            if (name, arg) in SKIPPED:
                marks = [pytest.mark.skip(reason=SKIPPED[name, arg])]
            out.append(pytest.param(name, arg, id=f"{name.removeprefix('jax_patterns.')}-{arg}", marks=marks))
    return out


def _argument_names(name: str) -> list[str]:
    """The argument names of an entry without building it (its valid values may be costly): from its Call."""
    return list(call_of(name).args)


def _ids(names: list[str]) -> list[str]:
    return [n.removeprefix("jax_patterns.") for n in names]


def _entries(known: tp.Callable[[str], str | None], mark: tp.Callable[[str], tp.Any]) -> list[tp.Any]:
    return [pytest.param(n, id=i, marks=[mark(known(n))] if known(n) else []) for n, i in zip(ENTRIES, _ids(ENTRIES))]


def _with_known_pairs(name: str) -> str | None:
    pairs = [arg for (entry, arg) in (*KNOWN, *SKIPPED) if entry == name]
    return f"known defects of {pairs} (fuzz_known.py)" if pairs or name in VALID_KNOWN else None


@pytest.mark.parametrize("name", _entries(VALID_KNOWN.get, lambda r: pytest.mark.xfail(reason=r, strict=True)))
def test_the_valid_call_works(name):
    call = call_of(name)
    outcome = JUDGE.reference(name, call, "", VALID)
    assert outcome.error is None, f"{name}: the table's valid call raised {outcome.error!r}"


@pytest.mark.parametrize(("name", "arg"), _pairs())
def test_each_bad_value_is_refused_naming_it_or_gives_the_right_result(name, arg):
    call = call_of(name)
    failures = [JUDGE.check(name, call, arg, value) for _, value in call.args[arg].mutations()]
    failures = [f for f in failures if f is not None]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", _entries(_with_known_pairs, lambda r: pytest.mark.skip(reason=r)))
@given(data=st.data())
def test_random_values_keep_the_contract(name, data):
    call = call_of(name)
    if not call.args:
        return
    arg = data.draw(st.sampled_from(sorted(call.args)), label="argument")
    value = data.draw(call.args[arg].strategy(), label="value")
    failure = JUDGE.check(name, call, arg, value)
    assert failure is None, failure
