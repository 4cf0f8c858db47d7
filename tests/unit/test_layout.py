"""The package's layout holds: layers import only downward, no import cycles, no colliding module names.

The layers are the ones docs/architecture.md draws. A module that belongs nowhere fails here, so a new
module is placed on purpose.
"""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "bindery"

# lowest first; a module may import from its own layer and the layers below it
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"settings", "datadir", "events", "channel", "_version", "versioning", "git_commands",
                    "engine_clients", "kube_client", "metrics", "outbound", "image_names", "registry_client",
                    "spec", "repoid", "process_runner", "http_clients", "backoff", "event_stream", "service_log",
                    "home_merge"}),
    ("adapters", {"providers", "state", "stack", "artifacts", "specrules"}),
    ("domain", {"builds", "launches", "storage"}),
    ("interfaces", {"web", "cli", "__main__", "deploy", "release", "federation"}),
]
# names every package may have for its own interface and its CLI group
SHARED_NAMES = {"__init__", "base", "commands"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if "base" in parts[:-1] and parts[1] == "stack":  # files copied into the base image, not imported
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def parse(path: Path) -> ast.Module:
    """``path``'s syntax tree, parsed in a worker thread: deep in a long test session's stack,
    CPython 3.11.7's AST constructor can fail with "recursion depth mismatch" (seen at the end of a
    full run; fixed in later CPython); a fresh thread starts from an empty stack."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(ast.parse, path.read_text()).result()


def imports_of(path: Path, name: str, is_package: bool) -> set[str]:
    tree = parse(path)
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    package = name if is_package else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("bindery")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("bindery"):
                out |= {f"{base}.{a.name}" for a in node.names} | {base}
    return out


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(part: str) -> int:
    for i, (_, members) in enumerate(LAYERS):
        if part in members:
            return i
    raise AssertionError(f"bindery.{part} is in no layer: add it to LAYERS and docs/architecture.md")


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for target in imports_of(path, name, path.name == "__init__.py"):
            while target not in mods and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in mods and target != name and target != "bindery":
                edges[name].add(target)
    return edges


def test_every_module_is_in_a_layer_and_imports_only_downward():
    upward = []
    for source, targets in graph().items():
        if source == "bindery":
            continue
        for target in targets:
            if layer_of(top(target)) > layer_of(top(source)):
                upward.append(f"{source} -> {target}")
    assert upward == []


def test_no_import_cycles_between_packages():
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph().items():
        for target in targets:
            if top(source) != top(target):
                edges[top(source)].add(top(target))
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in edges.get(node, ()):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif len(path) < 12:
                visit(nxt, path + [nxt])

    for start in list(edges):
        visit(start, [start])
    assert cycles == []


def test_no_two_modules_share_a_name():
    by_name: dict[str, list[str]] = defaultdict(list)
    for name in modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf not in SHARED_NAMES and name != "bindery":
            by_name[leaf].append(name)
    packages = {p.name for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists()}
    def is_package(name: str) -> bool:
        return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()

    clashes = {leaf: names for leaf, names in by_name.items()
               if len(names) > 1 or (leaf in packages and not all(is_package(n) for n in names))}
    assert clashes == {}


def test_no_folder_is_called_build():
    root = PACKAGE.parent
    folders = [p for top_dir in ("bindery", "tests", "bench") for p in (root / top_dir).rglob("build")
               if p.is_dir()]
    assert folders == []
