"""The package layers import one way, and inference never reaches training code.

Reads every ``import`` statement (function-level ones included) of the project's packages with :mod:`ast`; no module
is imported, so a violation is reported even where the import would be lazy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("aero_opt", "surrogate", "parameterizations", "constraints")

LAYERS: dict[str, int] = {
    "aero_opt.core": 0,
    "aero_opt.geometry": 1,
    "aero_opt.meshsdf": 2,
    "aero_opt.cfd": 2,
    "surrogate": 2,
    "constraints": 2,
    "parameterizations": 3,
    "aero_opt.app": 4,
}
"""Each layer package and its rank: a module may import its own package and any package of a lower rank."""

TRAINING = ("aero_opt.meshsdf.train", "aero_opt.meshsdf.finetune", "aero_opt.meshsdf.topology", "surrogate.train")
INFERENCE = ("aero_opt.app.optimize", "aero_opt.app.compare", "aero_opt.app.demo", "aero_opt.meshsdf.fit",
             "aero_opt.meshsdf.decoder", "surrogate.model", "surrogate.evaluate", "parameterizations", "constraints",
             "aero_opt.cfd")
"""Modules (or packages) that load trained models and must never import a trainer, directly or through others."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def project_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports: ``from a.b import c`` names ``a.b.c`` when that is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


ALIASES = {"aero_opt": "aero_opt.core"}
"""The package's own ``__init__`` belongs to the base layer."""


def layer_of(module: str) -> str | None:
    module = ALIASES.get(module, module)
    matches = [pkg for pkg in LAYERS if module == pkg or module.startswith(pkg + ".")]
    return max(matches, key=len) if matches else None


def rank_of(module: str) -> int:
    layer = layer_of(module)
    assert layer is not None, module
    return LAYERS[layer]


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in all_modules() if layer_of(m) is None]
    assert unplaced == []


def test_imports_go_down_only() -> None:
    modules = all_modules()
    bad = []
    for name, path in modules.items():
        own = layer_of(name)
        for target in project_imports(path, modules):
            theirs = layer_of(target)
            if theirs == own:
                continue
            if rank_of(target) >= rank_of(name):
                bad.append(f"{name} -> {target}")
    assert bad == []


def closure(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


@pytest.mark.parametrize("root", INFERENCE)
def test_inference_never_reaches_training(root: str) -> None:
    modules = all_modules()
    graph = {name: project_imports(path, modules) for name, path in modules.items()}
    starts = [m for m in modules if m == root or m.startswith(root + ".")]
    assert starts, root
    reached = {(s, t) for s in starts for t in closure(s, graph) if t in TRAINING}
    assert reached == set()


def test_no_package_needs_the_compiled_spline_conv_kernel() -> None:
    """torch-spline-conv is optional (only the equivalence test and the benchmark use it): nothing imports it."""
    users = []
    for name, path in all_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                users += [name for m in mods if m.split(".")[0] == "torch_spline_conv"]
    assert users == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The reader finds function-level imports and ``from package import module`` forms."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from aero_opt.app import optimize\n    import surrogate.train\n")
    modules = all_modules()
    assert project_imports(src, modules) == {"aero_opt.app", "aero_opt.app.optimize", "surrogate.train"}
