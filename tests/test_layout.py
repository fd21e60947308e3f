"""kdlib is laid out along the data flow: ``core`` (data, models, loss, step, loop), ``runs``
(recipes, experiments, artifacts), ``analysis`` (results, verdicts, claims, figures, reports).
A module imports only from its own package or one below it, and no module imports, directly
or through others, a module that imports it (run-time imports, function-level included)."""
import ast
from pathlib import Path

KDLIB = Path(__file__).resolve().parents[1] / "kdlib"
LAYERS = ("core", "runs", "analysis")  # bottom to top


def imports_of(path: Path) -> set[str]:
    """The kdlib modules ("package.module") ``path`` imports at run time (not those under
    ``if TYPE_CHECKING:``, which only annotations use)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    here = path.parent.relative_to(KDLIB.parent).parts  # ("kdlib", "core")
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = list(here[:len(here) - node.level + 1])
        parts = base + (node.module.split(".") if node.module else [])
        targets = [parts] + [parts + [a.name] for a in node.names]  # a module, or names in it
        for t in targets:
            name = ".".join(t[1:3])
            if len(t) >= 3 and (KDLIB / t[1] / f"{t[2]}.py").exists():
                found.add(name)
    return found


def modules() -> dict[str, Path]:
    return {f"{p.parent.name}.{p.stem}": p for layer in LAYERS for p in (KDLIB / layer).glob("*.py")
            if p.stem != "__init__"}


def test_every_module_lives_in_a_layer():
    assert sorted(p.name for p in KDLIB.glob("*.py")) == ["__init__.py", "__main__.py"]
    assert len(modules()) > 30


def test_imports_point_down_the_layers_only():
    upward = [f"{m} imports {d}" for m, p in modules().items() for d in imports_of(p)
              if LAYERS.index(d.split(".")[0]) > LAYERS.index(m.split(".")[0])]
    assert not upward, upward


def test_kdlib_has_no_import_cycle():
    graph = {m: imports_of(p) - {m} for m, p in modules().items()}
    cycles, done = [], set()

    def visit(module, path):
        for dep in graph[module]:
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(module)
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, f"import cycles: {sorted({' -> '.join(c) for c in cycles})[:5]}"


def floors() -> dict[str, int]:
    """Each module's floor: 1 for a module importing no other kdlib module, else one more than
    the highest floor it imports (the import graph has no cycle: the test above)."""
    graph = {m: imports_of(p) - {m} for m, p in modules().items()}
    found: dict[str, int] = {}

    def floor(m):
        if m not in found:
            found[m] = 1 + max((floor(d) for d in graph[m]), default=0)
        return found[m]
    for m in graph:
        floor(m)
    return found


def test_kdlib_has_at_most_eight_import_floors():
    """A newcomer reads kdlib bottom-up in at most eight steps (data and loss at the bottom,
    the README's and book's tables at the top)."""
    found = floors()
    assert max(found.values()) <= 8, sorted(found.items(), key=lambda kv: -kv[1])[:5]
    assert found["core.losses"] == 1 and found["analysis.report"] == max(found.values())


def test_the_layout_sees_relative_imports_of_every_form():
    """``from .x import y``, ``from . import x``, ``from ..pkg.x import y`` and
    ``from ..pkg import x`` all count."""
    assert {"runs.studies", "runs.experiments", "core.train", "runs.catalogue"} <= imports_of(
        KDLIB / "runs" / "runner.py")
    assert "runs.studies" in imports_of(KDLIB / "analysis" / "study_claims.py")
