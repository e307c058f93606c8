"""One home per family, and compiled programs keyed on everything they read (issue: silent wrong answers)."""

from __future__ import annotations

import ast
import copy
import pathlib
import pickle
import tracemalloc
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_same

import jax_patterns as jp
from jax_patterns import LayoutCoord, Pattern, _ops

PACKAGE = pathlib.Path(jp.__file__).parent


def cache_size(jitted: tp.Any) -> int:
    """How many compiled variants a jitted function holds."""
    return jitted._cache_size()


def own_build(provider, z: np.ndarray, length: int, special=-1) -> np.ndarray:
    """Example `z [K, T]` built alone with `provider.get_pattern(length)`."""
    own = provider.get_pattern(length)
    return np.asarray(own.build_pattern_sequence(z[:, :length], special)[0])


def check_lengths_match_own_patterns(provider, t_max: int, lengths) -> None:
    """Build and revert with lengths= equal, example by example, each example's own pattern."""
    pattern = provider.get_pattern(t_max)
    k = provider.n_q
    z = np.arange(len(lengths) * k * t_max, dtype=np.int32).reshape(len(lengths), k, t_max)
    built = np.asarray(pattern.build_pattern_sequence(z, -1, lengths=np.asarray(lengths))[0])
    back = np.asarray(pattern.revert_pattern_sequence(built, -1, lengths=np.asarray(lengths))[0])
    for b, length in enumerate(lengths):
        expected = own_build(provider, z[b], length)
        assert_same(built[b, :, : expected.shape[-1]], expected, f"build b={b} L={length}")
        assert (built[b, :, expected.shape[-1] :] == -1).all()
        assert_same(back[b, :, :length], z[b, :, :length], f"round trip b={b}")


class FixedWindow(jp.CodebooksPatternProvider):
    """A coarse-first variant whose second part always starts after `window` steps (not after L)."""

    def __init__(self, n_q: int, window: int):
        super().__init__(n_q)
        self.window = window

    def get_pattern(self, timesteps: int) -> Pattern:
        full = jp.CoarseFirstPattern(self.n_q).reference_layout(self.window)
        layout = [[c for c in step if c.t < timesteps] for step in full[: 1 + self.window + timesteps]]
        return Pattern(layout, timesteps, self.n_q)

    def __eq__(self, other: object) -> bool:
        return type(other) is FixedWindow and (other.n_q, other.window) == (self.n_q, self.window)

    def __hash__(self) -> int:
        return hash((self.n_q, self.window))


class CodebookZeroFirst(jp.DelayedPatternProvider):
    """Overrides `get_pattern` of a built-in: all of codebook 0, then the rest, one timestep a step."""

    def get_pattern(self, timesteps: int) -> Pattern:
        layout: list[list[LayoutCoord]] = [[]]
        layout += [[LayoutCoord(t, 0)] for t in range(timesteps)]
        layout += [[LayoutCoord(t, q) for q in range(1, self.n_q)] for t in range(timesteps)]
        return Pattern(layout, timesteps, self.n_q)


def test_custom_provider_with_a_builtin_layout_keeps_its_own_rule_whatever_the_call_order():
    builtin, custom = jp.CoarseFirstPattern(2), FixedWindow(2, 6)
    assert builtin.get_pattern(6) == custom.get_pattern(6)  # equal layouts at T_max ...
    check_lengths_match_own_patterns(builtin, 6, [2, 6, 0])  # ... the built-in's program is compiled first
    check_lengths_match_own_patterns(custom, 6, [2, 6, 0])  # ... and must not be reused for the custom rule
    z = np.arange(12, dtype=np.int32).reshape(1, 2, 6)
    traced = jax.jit(lambda n: custom.get_pattern(6).build_pattern_sequence(z, -1, lengths=n)[0])(jnp.array([2]))
    expected = own_build(custom, z[0], 2)
    assert_same(traced[0, :, : expected.shape[-1]], expected)


def test_subclass_overriding_get_pattern_does_not_inherit_the_parent_rule():
    provider = CodebookZeroFirst(3)
    assert provider.length_rule() is None
    assert isinstance(provider.get_pattern(5).length_rule, jp._layout.GenericRule)
    check_lengths_match_own_patterns(provider, 5, [3, 0, 5, 1])
    assert jp.ParallelPatternProvider(2).length_rule() is not None  # a subclass keeping get_pattern keeps it


@pytest.mark.parametrize("clone", [pickle.loads.__name__, "copy", "deepcopy"])
@pytest.mark.parametrize("provider", [jp.MusicLMPattern(4, 2), jp.CoarseFirstPattern(3, [0, 1]), FixedWindow(2, 5)])
def test_pickle_copy_and_deepcopy_keep_the_rule(clone, provider):
    pattern = provider.get_pattern(5)
    twin = {
        "loads": lambda p: pickle.loads(pickle.dumps(p)),
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
    }[clone](pattern)
    assert twin == pattern and twin.length_rule == pattern.length_rule
    z = np.arange(2 * provider.n_q * 5, dtype=np.int32).reshape(2, provider.n_q, 5)
    lengths = np.array([3, 1])
    for a, b in zip(
        twin.build_pattern_sequence(z, -1, lengths=lengths), pattern.build_pattern_sequence(z, -1, lengths=lengths)
    ):
        assert_same(a, b)


def test_equal_rules_share_a_program_and_different_rules_never_do():
    z = np.zeros((1, 2, 6), np.int32)
    n = np.array([3])
    jp.CoarseFirstPattern(2).get_pattern(6).build_pattern_sequence(z, -1, lengths=n)
    before = cache_size(_ops._build)
    jp._providers._cached_pattern.cache_clear()
    jp.CoarseFirstPattern(2, [0]).get_pattern(6).build_pattern_sequence(z, -1, lengths=n)  # equal provider
    assert cache_size(_ops._build) == before
    FixedWindow(2, 6).get_pattern(6).build_pattern_sequence(z, -1, lengths=jnp.asarray(n))  # device: traced path
    assert cache_size(_ops._build) == before + 1  # the same layout with another rule: its own program


def test_a_pattern_shared_by_two_providers_is_never_relabelled():
    shared = jp.DelayedPatternProvider(2).get_pattern(4)

    class Borrowing(jp.CodebooksPatternProvider):
        def get_pattern(self, timesteps: int) -> Pattern:
            return jp.DelayedPatternProvider(2).get_pattern(timesteps)

    borrowed = Borrowing(2).get_pattern(4)
    assert borrowed == shared and shared.provider == jp.DelayedPatternProvider(2)
    assert borrowed.provider.__class__ is Borrowing and isinstance(borrowed.length_rule, jp._layout.GenericRule)


def test_oversized_patterns_are_refused_from_the_arguments_in_constant_memory():
    for provider in (
        jp.DelayedPatternProvider(4),
        jp.ParallelPatternProvider(4),
        jp.UnrolledPatternProvider(4),
        jp.CoarseFirstPattern(4),
        jp.MusicLMPattern(4),
    ):
        tracemalloc.start()
        with pytest.raises(ValueError, match="too large for int32 indexes"):
            provider.get_pattern(10**9)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20, (provider, peak)


def test_parallel_provider_refuses_an_n_q_without_patterns_before_building_its_delays():
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"`n_q` must be <= 46340"):
        jp.ParallelPatternProvider(10**7)  # its n_q zero delays were built (80 MB) before the base class refused it
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20, peak


class Picky(jp.CodebooksPatternProvider):
    """A custom provider that cannot build some lengths, and records what it was asked."""

    def __init__(self, n_q: int, refuse: int):
        super().__init__(n_q, cached=False)
        self.refuse, self.asked = refuse, list[int]()

    def get_pattern(self, timesteps: int) -> Pattern:
        self.asked.append(timesteps)
        assert timesteps != self.refuse
        return jp.ParallelPatternProvider(self.n_q).get_pattern(timesteps)


def test_custom_provider_failing_for_a_length_gets_a_clear_error_and_only_occurring_lengths_are_asked():
    provider = Picky(2, refuse=0)
    pattern = provider.get_pattern(6)
    z = np.arange(12, dtype=np.int32).reshape(1, 2, 6).repeat(3, axis=0)
    provider.asked.clear()
    out = pattern.build_pattern_sequence(z, -1, lengths=np.array([4, 2, 4]))[0]
    assert sorted(set(provider.asked)) == [2, 4]  # host lengths: only those that occur, never T=0
    assert_same(out[1, :, :3], own_build(jp.ParallelPatternProvider(2), z[1], 2))
    with pytest.raises(ValueError, match=r"length 0 with .*Picky.*get_pattern\(0\), which failed: AssertionError"):
        pattern.build_pattern_sequence(z, -1, lengths=np.array([0, 2, 4]))
    with pytest.raises(ValueError, match=r"get_pattern\(0\), which failed"):  # traced: every length is asked
        jax.jit(lambda n: pattern.revert_pattern_sequence(np.zeros((3, 2, 7), np.int32), -1, lengths=n))(
            jnp.array([1, 2, 3])
        )


@pytest.mark.parametrize("provider", [jp.DelayedPatternProvider(3), jp.MusicLMPattern(2, 1), Picky(2, refuse=-1)])
def test_empty_batch_with_lengths_gives_empty_results(provider):
    pattern = provider.get_pattern(5)
    k, steps = provider.n_q, len(pattern)
    none = np.zeros((0,), np.int32)
    for out, shape in (
        (pattern.build_pattern_sequence(np.zeros((0, k, 5), np.int32), -1, lengths=none), (0, k, steps)),
        (pattern.revert_pattern_sequence(np.zeros((0, k, steps), np.int32), -1, lengths=none), (0, k, 5)),
        (pattern.revert_pattern_logits(np.zeros((0, 3, k, steps), np.float32), 0.0, lengths=none), (0, 3, k, 5)),
        (pattern.logit_steps(lengths=none), (0, k, 5)),
    ):
        assert out[0].shape == shape and all(x.shape[0] == 0 for x in out)


def test_every_family_lives_in_one_class():
    assert set(jp.FAMILIES) == {"delayed", "parallel", "unrolled", "coarse-first", "valle", "musiclm"}
    for name, family in jp.FAMILIES.items():
        provider: tp.Any = family(4)
        assert family.cli_name == name and isinstance(family.cli_options, tuple)
        assert provider.length_rule() is not None and family.audiocraft_names
        assert [list(s) for s in provider.get_pattern(3).layout] == provider.reference_layout(3)
        assert pathlib.Path(__import__(family.__module__, fromlist=["_"]).__file__).parent == PACKAGE


def _imports(path: pathlib.Path) -> set[str]:
    """Modules of jax_patterns that `path` imports, at module level or lazily inside functions (not the imports of
    an `if TYPE_CHECKING:` block, which never run)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jax_patterns"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & {m for m in _all_modules()}
            if not submodules or len(submodules) < len(node.names):  # names from the module itself
                found.add(node.module)
            found |= submodules
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("jax_patterns"))
    return {m for m in found if _module_path(m) is not None}


def _all_modules() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        names.add(".".join(p for p in rel.parts if p != "__init__"))
    return names


def _module_path(name: str) -> pathlib.Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE / "__init__.py"
    rel = pathlib.Path(*parts)
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_the_import_graph_has_no_cycle_but_the_pattern_facade():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(p for p in rel.parts if p != "__init__")
        modules[name] = path
    graph = {name: _imports(path) - {name} for name, path in modules.items()}
    # The one upward edge: `Pattern`'s audiocraft methods call the jitted ops (lazily imported).
    allowed = {("jax_patterns._layout", "jax_patterns._ops")}
    graph = {a: {b for b in deps if (a, b) not in allowed} for a, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert "jax_patterns._ops" in _imports(modules["jax_patterns._layout"]), "the facade edge is gone: update"
    # lm builds on the public surface, and checks its arguments with the one shared leaf of checkers (`_checks`)
    lm_private = {m for n, p in modules.items() if n.startswith("jax_patterns.lm") for m in _imports(p)}
    shared = ("jax_patterns", "jax_patterns._checks")
    assert all(m.startswith("jax_patterns.lm") or m in shared for m in lm_private), lm_private
    train_imports = {m for n, p in modules.items() if n.startswith("jax_patterns.train") for m in _imports(p)}
    assert all(m.startswith(("jax_patterns.train", "jax_patterns.lm")) or m in shared for m in train_imports)
