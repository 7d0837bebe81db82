"""The arrows of docs/architecture.md, checked on every import of every module (module level and inside
functions alike): a package imports only the packages its row allows; core imports only numpy and the
standard library; edge_app's top level holds only the composition root."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge_app"

# package -> the packages (or single modules, "sources.registry") it may import; core is always allowed
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "gst": set(), "datasets": set(), "frames": set(), "backends": set(), "health": set(), "logs": set(),
    "serve": {"health"},
    "config": {"backends", "frames", "sources.registry", "sources.probe"},
    "decoders": {"frames"},
    "inference": {"backends", "decoders", "frames"},
    "analytics": {"config"},
    "sources": {"config", "datasets", "gst"},
    "events": {"config", "health"},
    "outputs": {"gst", "health", "serve"},
    "review": {"datasets", "health", "inference", "serve"},
    "streams": {"analytics", "config", "health", "inference", "logs", "outputs", "review", "serve", "sources"},
    "rollout": {"config", "events", "inference", "logs", "serve"},
    "fleet": {"events", "serve", "rollout.commands"},
}
ANYTHING = {"cli", "app", "__main__", "__init__"}
TOP_LEVEL = {"__init__.py", "__main__.py", "app.py", "logs.py"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every edge_app import in a file, relative ones resolved."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                names = [f"{name}.{a.name}" for a in node.names] if not node.module else [name]
            else:
                names = [node.module or ""]
            out += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, n) for line, n in out if n.startswith("edge_app")]


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_import_follows_the_architecture():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        source = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if source in ANYTHING:
            continue
        allowed = ALLOWED.get(source)
        assert allowed is not None, f"{rel}: a package with no row in docs/architecture.md (add one)"
        for line, target in _imports(path):
            pkg = _package(target)
            if pkg in (source, "core"):
                continue
            sub = ".".join(target.split(".")[1:3])
            if pkg not in allowed and sub not in allowed:
                wrong.append(f"edge_app/{rel}:{line} imports {target} ({source} -> {pkg} is not drawn)")
    assert not wrong, "\n".join(wrong)


def test_core_is_numpy_and_the_standard_library():
    # (and scipy's assignment solver: the matcher of the tracking metrics, as of the tracker)
    stdlib = set(sys.stdlib_module_names)
    wrong = []
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in ("numpy", "scipy", "edge_app"):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_only_one_module_imports_gi_and_the_top_level_is_the_composition_root():
    gi = [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
          if any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                 ((isinstance(n, ast.Import) and any(a.name.split(".")[0] == "gi" for a in n.names)) or
                  (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "gi"))
                 for n in ast.walk(ast.parse(p.read_text())))]
    assert gi == ["edge_app/gst/__init__.py"], gi
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose <= TOP_LEVEL, f"modules at edge_app's top level: {sorted(loose - TOP_LEVEL)} (give them a package)"
