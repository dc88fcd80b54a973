"""What code an experiment runs: its module and every ``repro`` module it imports, transitively.

The hash of their sources decides whether a stored result can be reused: editing
``repro/models/transformer.py`` invalidates every run whose experiment imports it, directly or
through another module, on a clean or a dirty tree alike (the files are read, not git).
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from pathlib import Path


def _spec_file(module: str) -> Path | None:
    mod = sys.modules.get(module)
    f = getattr(mod, "__file__", None) if mod else None
    if f is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        f = spec.origin if spec and spec.has_location else None
    return Path(f) if f and f.endswith(".py") else None


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved); ``from X import y``
    yields both X and X.y (y may be a submodule)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{a.name}" for a in node.names if a.name != "*")
    return found


def modules(root: str, own: tuple[str, ...] = ("repro",)) -> dict[str, Path]:
    """``root`` and the modules of the packages ``own`` it imports transitively: name -> file.
    A package's ``__init__`` counts whenever one of its modules does (it runs on import)."""
    seen: dict[str, Path] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _spec_file(name)
        if path is None:
            continue
        seen[name] = path
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        for dep in list(_imports(path, name)) + parents:
            if dep.split(".")[0] in own and dep not in seen:
                todo.append(dep)
    return seen


def code_hash(module: str) -> str:
    """One hash over the sources of ``module`` and the repro modules it uses."""
    h = hashlib.sha256()
    for name, path in sorted(modules(module).items()):
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]
