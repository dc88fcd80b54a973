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
from typing import Callable

REPO = Path(__file__).resolve().parent.parent


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
    return _imports_of(path.read_bytes(), str(path), module)


def _imports_of(source: bytes, filename: str, module: str) -> set[str]:
    tree = ast.parse(source, filename=filename)
    package = module if filename.endswith("__init__.py") else module.rpartition(".")[0]
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


# ---- the same hash from any tree of files (a git commit, a folder) ----------------------------------

Reader = Callable[[str], "bytes | None"]   # a path relative to the repository root ('repro/x.py') -> bytes


def module_path(name: str, read: Reader) -> str | None:
    """Where module ``name`` lives in a tree read by ``read``: 'a/b.py' or 'a/b/__init__.py'."""
    base = name.replace(".", "/")
    for path in (f"{base}.py", f"{base}/__init__.py"):
        if read(path) is not None:
            return path
    return None


def modules_in(root: str, read: Reader, own: tuple[str, ...] = ("repro",)) -> dict[str, str]:
    """:func:`modules` for a tree read by ``read`` (name -> path in the tree): resolves imports by file
    names, as Python would import them from the repository root."""
    seen: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_path(name, read)
        if path is None:
            continue
        seen[name] = path
        source = read(path) or b""
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        deps = _cached_imports(source, path, name)
        for dep in list(deps) + parents:
            if dep.split(".")[0] in own and dep not in seen:
                todo.append(dep)
    return seen


_IMPORTS: dict[tuple[str, str, bytes], frozenset[str]] = {}


def _cached_imports(source: bytes, path: str, name: str) -> frozenset[str]:
    key = (name, path, hashlib.sha1(source).digest())
    if key not in _IMPORTS:
        try:
            _IMPORTS[key] = frozenset(_imports_of(source, path, name))
        except SyntaxError:
            _IMPORTS[key] = frozenset()
    return _IMPORTS[key]


def code_hash_in(module: str, read: Reader) -> str | None:
    """:func:`code_hash` of ``module`` as it is in the tree read by ``read`` (None: no such module)."""
    found = modules_in(module, read)
    if module not in found:
        return None
    h = hashlib.sha256()
    for name, path in sorted(found.items()):
        h.update(name.encode() + b"\0" + (read(path) or b"") + b"\0")
    return h.hexdigest()[:12]


def file_hashes(module: str) -> dict[str, str]:
    """Module name -> a short hash of its source, for every file :func:`code_hash` reads: what a record
    keeps so that a later change can be named by file."""
    return {name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for name, path in sorted(modules(module).items())}


def file_hashes_in(module: str, read: Reader) -> dict[str, str]:
    return {name: hashlib.sha256(read(path) or b"").hexdigest()[:12]
            for name, path in sorted(modules_in(module, read).items())}


def folder_reader(root: Path) -> Reader:
    """Files as they are now under ``root`` (each read once per reader)."""
    cache: dict[str, bytes | None] = {}

    def read(path: str) -> bytes | None:
        if path not in cache:
            p = root / path
            cache[path] = p.read_bytes() if p.is_file() else None
        return cache[path]
    return read


_FILES: dict[str, tuple[tuple[int, int], bytes]] = {}


def _read_now(path: str) -> bytes | None:
    """A file of this checkout as it is now (re-read only when its size or time changed)."""
    p = REPO / path
    try:
        st = p.stat()
    except OSError:
        return None
    if not p.is_file():
        return None
    key = (st.st_mtime_ns, st.st_size)
    if path not in _FILES or _FILES[path][0] != key:
        _FILES[path] = (key, p.read_bytes())
    return _FILES[path][1]


_NOW: dict[str, tuple[tuple, str]] = {}


def _stamp(paths) -> tuple:
    out = []
    for path in paths:
        try:
            st = (REPO / path).stat()
            out.append((path, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((path, None, None))
    return tuple(out)


def code_hash_now(module: str) -> str:
    """:func:`code_hash` read from the files of this checkout without importing anything (no
    TensorFlow); a module outside it is hashed as :func:`code_hash` finds it."""
    if module in _NOW and _stamp(p for p, _, _ in _NOW[module][0]) == _NOW[module][0]:
        return _NOW[module][1]
    found = modules_in(module, _read_now)
    if module not in found:
        return code_hash(module)
    h = hashlib.sha256()
    for name, path in sorted(found.items()):
        h.update(name.encode() + b"\0" + (_read_now(path) or b"") + b"\0")
    _NOW[module] = (_stamp(found.values()), h.hexdigest()[:12])
    return _NOW[module][1]


def file_hashes_now(module: str) -> dict[str, str]:
    return file_hashes_in(module, _read_now) if module_path(module, _read_now) else file_hashes(module)


# ---- which module defines an experiment ------------------------------------------------------------

EXPERIMENTS_PACKAGE = "repro/experiments"


def registered_names(source: bytes) -> list[str]:
    """The experiment names a module registers: the string argument of every ``@experiment("name")``
    (or ``@registry.experiment("name", ...)``) decorator, read without importing it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                if isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Constant) \
                        and isinstance(d.args[0].value, str):
                    fn = d.func
                    name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                    if name == "experiment":
                        found.append(d.args[0].value)
    return found


def experiment_modules_in(read: Reader, files: list[str]) -> dict[str, str]:
    """Experiment name -> module, from the sources of ``files`` (paths under repro/experiments/)."""
    out: dict[str, str] = {}
    for path in files:
        if not path.endswith(".py") or path.endswith("__init__.py"):
            continue
        source = read(path)
        if source is None:
            continue
        try:
            names = registered_names(source)
        except SyntaxError:
            continue
        for n in names:
            out.setdefault(n, path[:-3].replace("/", "."))
    return out


def experiment_module(experiment: str) -> str | None:
    """The module that defines ``experiment``: from the registry when it is loaded there (experiments
    kept outside repro/, e.g. a test's), else read from the sources under repro/experiments/ without
    importing them (no TensorFlow)."""
    from repro import registry

    fn = registry.EXPERIMENTS.get(experiment)
    if fn is not None:
        return fn.__module__
    return _static_experiments().get(experiment)


def _static_experiments() -> dict[str, str]:
    folder = REPO / EXPERIMENTS_PACKAGE
    files = sorted(p.relative_to(REPO).as_posix() for p in folder.glob("*.py"))
    key = tuple((f, (REPO / f).stat().st_mtime_ns) for f in files)
    if _STATIC.get("key") != key:
        _STATIC["key"], _STATIC["map"] = key, experiment_modules_in(folder_reader(REPO), files)
    return _STATIC["map"]


_STATIC: dict = {}
