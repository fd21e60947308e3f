"""One place per idea, small enough to read (issue 13): no kdlib module of 400 lines or more,
no function (or method) over 60 lines."""
import ast
from pathlib import Path

KDLIB = Path(__file__).resolve().parents[1] / "kdlib"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 399, 60


def sizes() -> tuple[dict[str, int], dict[str, int]]:
    """({module: lines}, {module:function: lines}) of every kdlib module."""
    modules, functions = {}, {}
    for path in sorted(KDLIB.glob("*.py")):
        text = path.read_text()
        modules[path.name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_no_module_of_400_lines_or_more():
    modules, _ = sizes()
    assert len(modules) > 10
    assert {m: n for m, n in modules.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_over_60_lines():
    _, functions = sizes()
    assert "train.py:train" in functions
    assert {f: n for f, n in functions.items() if n > MAX_FUNCTION_LINES} == {}


if __name__ == "__main__":  # the size report: python tests/test_sizes.py
    modules, functions = sizes()
    for name, n in sorted(modules.items(), key=lambda kv: -kv[1]):
        print(f"{n:5d}  {name}")
    print("largest functions:")
    for name, n in sorted(functions.items(), key=lambda kv: -kv[1])[:8]:
        print(f"{n:5d}  {name}")
