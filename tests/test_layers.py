"""The house (issue #41.43): every import, at module level or inside a function, goes down the layers of
``docs/architecture.md``; no import circle between modules; no module past ~500 lines."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    "io",
    "nn",
    "models",
    "hub",
    "face",
    "restore",
    "data",
    "analysis",
    "metrics",
    "training",
    "video",
    "jobs",
    "cluster",
    "tools",
]
"""gfr_core's folders, lowest first: a folder imports only from the folders before it (and itself)."""


def _modules() -> dict[str, Path]:
    mods = {}
    for f in [*(ROOT / "gfr_core").rglob("*.py"), *(ROOT / "demo").rglob("*.py")]:
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports, wherever the import statement stands."""
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                prefix = ".".join(p for p in (base, node.module or "") if p)
                targets = [f"{prefix}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    graph[name].add(t)
    return graph


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "gfr_core" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def test_no_import_runs_back_up_a_layer():
    up = [
        f"{a} -> {b}"
        for a, targets in _graph().items()
        for b in targets
        if _layer(a) is not None and _layer(b) is not None and _layer(b) > _layer(a)
    ]
    assert up == []


def test_no_import_circle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert circles == []


def test_no_module_is_past_the_split_line():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
