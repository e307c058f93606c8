"""mkdocs hooks: the API reference pages, generated from each package's `__all__`, and the benchmark plot.

Every name a package exports gets its own `::: package.name` entry, so a new public name appears in the reference by
itself. A public name without a docstring (or a public method of a public class without one) is logged as a warning,
which fails `mkdocs build --strict`; `tests/test_docs.py` runs the same check on its own. The packages are read
statically with griffe (what mkdocstrings renders), so building the site imports neither jax nor torch.
"""

from __future__ import annotations

import os
import re
import typing as tp

import griffe
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# package -> (page under api/, one line on what it holds)
PACKAGES = {
    "jax_patterns": ("jax_patterns", "Pattern providers, the `Pattern` and its operations, packing, plotting."),
    "jax_patterns.lm": ("lm", "The LM layer: losses, generation, streaming, the engine, MAGNeT, the NNX `CodecLM`."),
    "jax_patterns.presets": ("presets", "Model conventions as transformers runs them, exact."),
    "jax_patterns.train": ("train", "The training loop behind `python -m jax_patterns train`."),
    "jax_patterns.models": ("models", "MusicGen's language model in JAX."),
    "torch_compat": ("torch_compat", "The PyTorch side: audiocraft's algorithm in torch, conversions, comparisons."),
}

# repository files the site shows as they are: the benchmark results and their plot
COPIED = ("benchmarks/RESULTS.md", "benchmarks/results.png")

log = get_plugin_logger(__name__)


class ExampleSections(griffe.Extension):
    """Reads a Google docstring's `Example:` heading as `Examples:` (STYLE.md's word; griffe knows the other).

    Without it griffe renders an `Example:` section as an admonition of plain markdown, so its `>>>` lines would not
    be code. mkdocs.yml loads it as a mkdocstrings extension (`docs/hooks.py:ExampleSections`).
    """

    _heading = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)

    def on_instance(self, *, obj: griffe.Object, **kwargs: tp.Any) -> None:
        """Renames the heading in the docstring of every object griffe creates."""
        if obj.docstring is not None:
            obj.docstring.value = self._heading.sub(r"\1Examples:", obj.docstring.value)


def load_packages() -> dict[str, griffe.Module]:
    """The packages of `PACKAGES`, loaded statically with their aliases resolved."""
    loader = griffe.GriffeLoader(docstring_parser=griffe.Parser.google, search_paths=[ROOT])
    for top in sorted({name.split(".")[0] for name in PACKAGES}):
        loader.load(top)
    loader.resolve_aliases(implicit=True, external=False)
    return {name: loader.modules_collection.get_member(name) for name in PACKAGES}


def exports(module: griffe.Module) -> list[str]:
    """The names of a package's `__all__`, in its order (griffe reads the literal tuple)."""
    if module.exports is None:
        raise ValueError(f"{module.path} has no `__all__`: the API reference is generated from it")
    return [name if isinstance(name, str) else name.name for name in module.exports]


def _undocumented(obj: tp.Any, path: str) -> tp.Iterator[str]:
    if obj.is_alias:
        obj = obj.final_target
    if not (obj.docstring and obj.docstring.value.strip()):
        yield path
    if obj.is_class or obj.is_module:
        for name, member in obj.members.items():
            if name.startswith("_") or (obj.is_module and not member.is_public):
                continue
            if member.is_alias:
                try:
                    member = member.final_target
                except griffe.AliasResolutionError:  # an import of another library
                    continue
            if member.is_attribute or member.is_module:  # dataclass fields and class constants: their class says
                continue
            yield from _undocumented(member, f"{path}.{name}")


def undocumented(modules: dict[str, griffe.Module] | None = None) -> list[str]:
    """Every public name without a docstring.

    Public names are those of each package's `__all__`, the public methods and properties of those that are
    classes, and the public members of those that are modules (`torch_compat.lm`, `torch_compat.reference`).
    """
    modules = load_packages() if modules is None else modules
    missing: list[str] = []
    for package, module in modules.items():
        for name in exports(module):
            missing.extend(_undocumented(module[name], f"{package}.{name}"))
    return missing


def api_page(package: str, names: list[str]) -> str:
    """The markdown of one package's reference page: its docstring, then one entry per exported name."""
    lines = [
        f"# `{package}`",
        "",
        PACKAGES[package][1],
        "",
        f"::: {package}",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "      show_root_toc_entry: false",
        "",
    ]
    for name in names:
        lines += [f"::: {package}.{name}", ""]
    return "\n".join(lines)


def on_files(files: Files, config: tp.Any) -> Files:
    """Add the generated API pages and the copied benchmark files; warn about every missing docstring."""
    modules = load_packages()
    for path in undocumented(modules):
        log.warning(f"public name without a docstring: {path}")
    for package, module in modules.items():
        content = api_page(package, exports(module))
        files.append(File.generated(config, f"api/{PACKAGES[package][0]}.md", content=content))
    for rel in COPIED:
        files.append(File.generated(config, rel, abs_src_path=os.path.join(ROOT, rel)))
    return files
