"""The request path reads top-down: no import circle, and no module imports a layer above it.

HTTP (routes, app, CLI) -> pipeline (and the worker's composition root) -> routing and
accounting -> providers, protocol translation and the store -> primitives. Function-level
imports count; imports under `if TYPE_CHECKING:` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

PACKAGE = ROOT / "facade"
HTTP, PIPELINE, ROUTING, PARTS, PRIMITIVES = 5, 4, 3, 2, 1
LAYER_NAMES = {
    5: "HTTP",
    4: "pipeline",
    3: "routing/accounting",
    2: "providers/store",
    1: "primitives",
}
# The longest matching prefix decides a module's layer. A new module outside these prefixes
# must be placed here: where it sits in the request path is a decision, not an accident.
LAYERS = {
    "facade": HTTP,  # create_app
    "facade.api": HTTP,
    "facade.app": HTTP,
    "facade.cli": HTTP,
    "facade.drain": HTTP,
    "facade.command": HTTP,
    "facade.gunicorn_conf": HTTP,
    "facade.worker": HTTP,
    "facade.gateway": PIPELINE,
    "facade.pipeline": PIPELINE,
    "facade.key_admin": PIPELINE,
    "facade.cache": ROUTING,
    "facade.router": ROUTING,
    "facade.accounting": ROUTING,
    "facade.admission": ROUTING,
    "facade.bound": ROUTING,
    "facade.metering": ROUTING,
    "facade.first_chunk": ROUTING,
    "facade.parallel": ROUTING,
    "facade.providers": PARTS,
    "facade.protocols": PARTS,
    "facade.store": PARTS,
    "facade.inflight": PARTS,
    "facade.rate_window": PARTS,
    "facade.hold_table": PARTS,
    "facade.schemas": PRIMITIVES,
    "facade.telemetry": PRIMITIVES,
    "facade.config": PRIMITIVES,
    "facade.settings": PRIMITIVES,
    "facade.errors": PRIMITIVES,
    "facade.envelope": PRIMITIVES,
    "facade.jsonutil": PRIMITIVES,
    "facade.estimates": PRIMITIVES,
    "facade.keys": PRIMITIVES,
    "facade.shared_lock": PRIMITIVES,
    "facade.outcome": PRIMITIVES,
    "facade.validation": PRIMITIVES,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        # "facade" itself is the package's __init__ only, never a catch-all for new modules
        if module == prefix or (prefix != "facade" and module.startswith(prefix + ".")):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return best[1] if best else None


def _type_checking_only(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            lines.update(n.lineno for s in node.body for n in ast.walk(s) if hasattr(n, "lineno"))
    return lines


def imports_of(path: Path, known: set[str]) -> set[str]:
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from . import x` names module x; `from .m import y` names module m
            subs = [f"{prefix}.{alias.name}" for alias in node.names]
            names = [s for s in subs if s in known] or [prefix]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and not name.startswith(module + "."):
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {m: imports_of(p, known) for m, p in files.items()}


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in graph() if layer_of(m) is None)
    assert not unplaced, f"place these modules in tests/test_layers.py LAYERS: {unplaced}"


def test_no_module_imports_a_layer_above_it():
    upward = [
        f"{m} ({LAYER_NAMES[layer_of(m)]}) imports {d} ({LAYER_NAMES[layer_of(d)]})"
        for m, deps in graph().items()
        for d in deps
        if layer_of(m) is not None and layer_of(d) is not None and layer_of(d) > layer_of(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in g:
        if v not in index:
            visit(v)
    assert not circles, circles
