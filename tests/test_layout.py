"""kdlib's modules import one another along the data flow only: no module imports, directly or
through others, a module that imports it (checked on the source, including function-level
imports)."""
import ast
from pathlib import Path

KDLIB = Path(__file__).resolve().parents[1] / "kdlib"


def imports_of(path: Path) -> set[str]:
    """The kdlib modules ``path`` imports at run time (not those under ``if TYPE_CHECKING:``,
    which only annotations use)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_kdlib_has_no_import_cycle():
    graph = {p.stem: imports_of(p) - {p.stem} for p in KDLIB.glob("*.py") if p.stem != "__init__"}
    graph = {m: {d for d in deps if d in graph} for m, deps in graph.items()}
    cycles = []

    def visit(module, path):
        for dep in graph[module]:
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(module)
    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, f"import cycles: {sorted({' -> '.join(c) for c in cycles})[:5]}"
