"""The package's shape (ARCHITECTURE.md): layers that import only downwards, no import cycles (function-local
imports included), no function longer than a screen."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pinnbal"

#: bottom to top; a module may import its own layer and the layers below, never one above
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "storage", "version")),
    ("problem contract", ("datafiles", "sampling", "csg", "geometry", "shapes", "selection", "points", "losses", "reference",
                          "recipe", "problem", "loader", "solvers")),
    ("engine", ("nets", "forward", "batches", "jacobian", "context", "adam", "lookahead")),
    ("balancers", ("balancers",)),
    ("run directory", ("rundir",)),
    ("training", ("train",)),
    ("figures", ("render",)),
    ("public workflow", ("workflow",)),
    ("comparisons", ("compare",)),
    ("benchmarks", ("bench",)),
    ("entry points", ("cli", "")),  # "": the package itself, pinnbal/__init__.py
]
MAX_FUNCTION_LINES = 60
LONG_ALLOWED = {"solvers"}  # the scipy reference solvers: one numerical method each, kept whole


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    top = module.split(".")[0]
    for index, (_, names) in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"pinnbal.{module} belongs to no layer: add it to LAYERS and ARCHITECTURE.md")


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The pinnbal modules (names relative to the package) an import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name.removeprefix("pinnbal").lstrip(".") for a in node.names
                if a.name == "pinnbal" or a.name.startswith("pinnbal.")]
    if node.level:
        is_package = MODULES[module].name == "__init__.py"
        base = module.split(".") if module else []
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    elif node.module and (node.module == "pinnbal" or node.module.startswith("pinnbal.")):
        target = node.module.removeprefix("pinnbal").lstrip(".")
    else:
        return []
    subs = [f"{target}.{a.name}" if target else a.name for a in node.names]
    loaded = [sub for sub in subs if sub in MODULES]  # `from . import scenes` loads a submodule
    # the package itself counts unless every name is a submodule (`from . import rundir` needs rundir only)
    return loaded if node.module is None and len(loaded) == len(subs) else [target] + loaded


def executed(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (imports for annotations, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *executed(child)])
            continue
        yield node
        yield from executed(node)


def imports() -> dict[str, set[str]]:
    """Module -> the pinnbal modules it imports when run (top-level and function-local imports)."""
    graph = {}
    for module, path in MODULES.items():
        found = set()
        for node in executed(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(t for t in resolve(module, node) if t != module)
        graph[module] = found
    return graph


def test_every_module_sits_in_a_layer():
    for module in MODULES:
        layer(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"pinnbal.{a} ({LAYERS[layer(a)][0]}) imports pinnbal.{b} ({LAYERS[layer(b)][0]})"
              for a, targets in imports().items() for b in targets if layer(b) > layer(a)]
    assert not upward, "\n".join(upward)


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk meets, as ``a -> b -> a``."""
    state: dict[str, str] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_import_cycles_function_local_imports_included():
    cycles = find_cycles(imports())
    assert not cycles, "\n".join(cycles)


def test_nothing_inside_imports_the_package_itself():
    assert not [m for m, targets in imports().items() if "" in targets and m != ""]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] not in LONG_ALLOWED))
def test_no_function_is_longer_than_a_screen(module):
    tree = ast.parse(MODULES[module].read_text())
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"pinnbal.{module}: {', '.join(long)}"


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The walker itself: a planted cycle and upward import are found, relative imports resolve."""
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    assert layer("render") > layer("train") > layer("errors")
    assert resolve("train.loop", ast.parse("from ..render import plots").body[0]) == ["render", "render.plots"]
    assert resolve("render", ast.parse("from . import scenes").body[0]) == ["render.scenes"]
    assert resolve("workflow", ast.parse("from . import rundir").body[0]) == ["rundir"]
    assert resolve("cli", ast.parse("import pinnbal.rundir").body[0]) == ["rundir"]
    guarded = ast.parse("if TYPE_CHECKING:\n    from .a import A\nelse:\n    from .b import B\ndef f():\n    from .c import C")
    assert [n.module for n in executed(guarded) if isinstance(n, ast.ImportFrom)] == ["b", "c"]


def test_the_worked_balancer_of_architecture_md_is_one_short_file_that_trains(tmp_path):
    """ARCHITECTURE.md's example balancer, as written there: at most 80 lines, and with alpha=0 every term
    contributes the same to the weighted loss at every logged step (w_k L_k equal across k)."""
    import re

    import pinnbal as pb

    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    code = re.search(r"## A new balancer, worked.*?```python\n(.*?)```", text, re.S).group(1)
    assert len(code.splitlines()) <= 80 and code.lstrip().startswith('"""')
    (tmp_path / "mybal.py").write_text(code)
    run = pb.train(PACKAGE.parent / "problems" / "poisson1d.py", f"{tmp_path / 'mybal.py'}:EqualShare:alpha=0,min=0,max=1e12",
                   render=False, steps=30, lbfgs=0, width=8, depth=1, log_every=5)
    terms = [k.removeprefix("loss/") for k in run.history[0] if k.startswith("loss/")]
    assert len(terms) >= 2
    for row in run.history:
        shares = [row[f"weight/{t}"] * row[f"loss/{t}"] for t in terms]
        assert max(shares) == pytest.approx(min(shares), rel=1e-9)
        assert sum(row[f"weight/{t}"] for t in terms) == pytest.approx(len(terms), rel=1e-9)
