"""The import layout that docs/architecture.md draws, checked on the source (AST, no import).

Every ``import`` counts, at module level or inside a function: imports run one way, from the command
line tool down to ``_epfinder_boot``, and form no cycle. Start-up code reaches up into the package in
one place only, ``_epfinder_boot.handover()`` (and ``loaded()``, which looks in sys.modules and
imports nothing). What a start may load is named ``_epfinder_boot`` or ``epfinder._startup_*`` and
imports nothing heavy.
"""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
TESTS = Path(__file__).resolve().parent

# Bottom to top. A module imports modules of its own layer or of layers below, never above.
LAYERS = [
    ("every start", ["_epfinder_boot"]),
    ("a start after a site directory changed", [
        "epfinder._startup_entries", "epfinder._startup_atomic", "epfinder._startup_table"]),
    ("the scanner", ["epfinder._scan"]),
    ("what a metadata query loads", ["epfinder._cache"]),
    ("the library", ["epfinder._packages", "epfinder._app", "epfinder._api", "epfinder._startup_costs", "epfinder"]),
    ("the command line tool", ["epfinder._report", "epfinder._record", "epfinder._audit", "epfinder._cli",
                               "epfinder.__main__"]),
]
LAYER = {module: i for i, (_what, modules) in enumerate(LAYERS) for module in modules}

# What a start may import besides these modules themselves: nothing that costs anything.
START_STDLIB = {
    "os", "sys", "time", "errno",
    "atexit",  # built in (no file): takes epfinder out before the interpreter's teardown
    "fnmatch",  # only for a startup.disable pattern with a wildcard (it loads re)
    "traceback",  # only under EPFINDER_TRACE=1, for a hook that failed
    "email",  # only for a METADATA of unusual shape (a folded header), read as importlib.metadata reads it
}
# A traced start (EPFINDER_TRACE=1) writes the hooks' costs to the per-user cache folder, which
# epfinder._cache knows; no other start-up module reaches outside the start-up files.
START_EXCEPTIONS = {("epfinder._startup_costs", "epfinder._cache")}
# Package code that reaches up through _epfinder_boot.handover() instead of an import, and why.
UPWARD_HANDOVERS = {
    ("epfinder._cache", "_packages"): "the first packages_distributions() call; _packages reads the caches "
                                      "through _cache, so an import would close a cycle",
}
# The modules that start-up code hands over to, and why.
HANDOVERS = {
    "_cache": "the first metadata query, and importlib.metadata being imported",
    "_startup_table": "a site directory changed since the hook table was written",
    "_startup_costs": "a start under EPFINDER_TRACE=1 keeps what it measured",
}


def module_files():
    files = {"_epfinder_boot": SRC / "_epfinder_boot.py"}
    for path in sorted((SRC / "epfinder").glob("*.py")):
        name = "epfinder" if path.stem == "__init__" else f"epfinder.{path.stem}"
        files[name] = path
    return files


FILES = module_files()
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in FILES.items()}


def imports_of(name, tree):
    """[(imported module, enclosing function or None)] for every import statement of a module."""
    package = name if FILES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                continue  # names for type comments only: never imported at run time
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join([package, base]) if base else package
                for alias in child.names:
                    # `from . import _cache` imports the module epfinder._cache; `from . import X`
                    # of anything else imports the package itself.
                    candidate = f"{base}.{alias.name}"
                    found.append((candidate if candidate in FILES else base, function))
            visit(child, inner)

    visit(tree, None)
    return found


EDGES = {name: imports_of(name, tree) for name, tree in TREES.items()}


def ours(module):
    return module in FILES


def test_every_module_has_a_layer():
    assert set(FILES) == set(LAYER), "add the new module to LAYERS here and to docs/architecture.md"


def test_imports_go_down_only():
    upward = [f"{name} -> {target}" + (f" (in {function}())" if function else "")
              for name, edges in EDGES.items() for target, function in edges
              if ours(target) and LAYER[target] > LAYER[name]]
    assert upward == []


def test_no_cycle_even_counting_imports_inside_functions():
    graph = {name: {t for t, _f in edges if ours(t) and t != name} for name, edges in EDGES.items()}
    state = {}
    cycles = []

    def walk(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                walk(target, stack + [target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert cycles == []


def is_startup(name):
    return name == "_epfinder_boot" or name.startswith("epfinder._startup_")


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names")
def test_what_a_start_loads_imports_nothing_heavy():
    wrong = []
    for name, edges in EDGES.items():
        if not is_startup(name):
            continue
        for target, function in edges:
            if (name, target) in START_EXCEPTIONS:
                continue
            top = target.partition(".")[0]
            if ours(target):
                ok = is_startup(target)
            else:
                ok = top in sys.stdlib_module_names and target in START_STDLIB
                if function is None:
                    ok = ok and target in ("os", "sys", "time")  # loaded by every start already
            if not ok:
                wrong.append(f"{name} -> {target}" + (f" (in {function}())" if function else ""))
    assert wrong == []


def test_start_up_hands_over_to_the_package_in_one_place():
    tree = TREES["_epfinder_boot"]
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    # No import statement of the package at all: only handover() imports it, by name.
    assert [t for t, _f in EDGES["_epfinder_boot"] if t.partition(".")[0] == "epfinder"] == []
    dynamic = sorted(
        name for name, node in functions.items() for call in ast.walk(node)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "__import__")
    assert dynamic == ["handover", "load_hook"]  # load_hook imports a third-party startup hook
    # sys.modules is asked for a module of the package only in loaded() and handover().
    asked = sorted({
        name for name, node in functions.items() for sub in ast.walk(node)
        if isinstance(sub, ast.Constant) and type(sub.value) is str and sub.value.startswith("epfinder.")
        and any(isinstance(a, ast.Attribute) and a.attr == "modules" for a in ast.walk(node))
    })
    assert set(asked) <= {"handover", "loaded"}, asked
    targets = {
        call.args[0].value for call in ast.walk(tree)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("handover", "loaded")
        and call.args and isinstance(call.args[0], ast.Constant)
    }
    handed = {
        call.args[0].value for call in ast.walk(tree)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "handover"
    }
    assert handed == set(HANDOVERS)
    assert all(f"epfinder.{t}" in FILES for t in targets)


def test_package_code_reaches_up_only_through_the_listed_handovers():
    found = set()
    for name, tree in TREES.items():
        if name == "_epfinder_boot":
            continue
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "handover":
                assert isinstance(call.args[0], ast.Constant), f"{name}: handover() of a computed name"
                found.add((name, call.args[0].value))
    assert found == set(UPWARD_HANDOVERS)
    for name, target in found:
        assert LAYER[f"epfinder.{target}"] > LAYER[name], "a handover to a lower layer is an import"


def test_the_package_init_imports_nothing_at_import():
    assert [t for t, function in EDGES["epfinder"] if function is None] == []


def test_tests_import_helpers_not_other_tests():
    wrong = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            wrong += [f"{path.name} imports {n}" for n in names if n.startswith(("test_", "conftest"))]
    assert wrong == []


def test_one_definition_of_each_fixture():
    seen = {}
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    "fixture" in ast.unparse(d) for d in node.decorator_list):
                seen.setdefault(node.name, []).append(path.name)
    # test_cli's world is a site directory in this process; test_workflows' is a real venv.
    twice = {name: files for name, files in seen.items() if len(files) > 1 and name != "world"}
    assert twice == {}


def test_the_architecture_page_lists_every_file():
    page = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [path.name for path in FILES.values() if f"`{path.name}`" not in page
               and path.name != "__init__.py"]
    assert missing == []


def test_the_picture_draws_the_layers_in_this_order():
    page = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    picture = page[page.index("## Where the code lives"):].split("```")[1]
    rows = {what: next((i for i, line in enumerate(picture.splitlines()) if line.strip().startswith(what)), None)
            for what, _modules in LAYERS}
    assert None not in rows.values(), rows
    drawn = sorted(rows, key=rows.get, reverse=True)  # the picture has the bottom layer last
    assert drawn == [what for what, _modules in LAYERS]
    for what, modules in LAYERS:
        line = picture.splitlines()[rows[what]]
        assert all((m.rpartition(".")[2] if m != "epfinder" else "__init__") in line for m in modules), what


def test_no_module_of_the_package_is_left_out():
    on_disk = {p.name for p in (SRC / "epfinder").iterdir() if p.suffix == ".py"}
    assert on_disk == {FILES[n].name for n in FILES if n.startswith("epfinder")}
