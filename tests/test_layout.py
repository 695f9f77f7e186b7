"""The rooms of infra/ (each folder's ``__init__``): imports go down the flow of data only, and never in a circle.

stackfile (the stack file validated into a config) < specs (what runs) < aws | local (where it runs) < tools (what
reads the config or the program); ``infra/__main__.py``, the Pulumi entry, above all. Every import counts, those
under ``TYPE_CHECKING`` and inside functions included: a circle of types is a circle still.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

from tests.conftest import REPO_ROOT

INFRA = REPO_ROOT / "infra"
# Room -> its level; a room imports its own level's modules only if they are its own.
LEVELS = {"stackfile": 0, "specs": 1, "aws": 2, "local": 2, "tools": 3, "__main__": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The infra modules ``path`` imports (``from infra.x import y`` is ``infra.x.y`` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named = {f"{node.module}.{a.name}" for a in node.names}
            found |= (named & modules) | ({node.module} if named - modules else set())
    return {name for name in found if name.split(".")[0] == "infra"}


def graph() -> dict[str, set[str]]:
    paths = sorted(INFRA.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports(p, modules) - {module_name(p)} for p in paths}


def room(module: str) -> str:
    return module.split(".")[1]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in edges.items():
        for target in targets:
            if room(target) not in LEVELS:
                wrong.append(f"{target} (imported by {module}) is in no room")
            elif room(target) != room(module) and LEVELS[room(target)] >= LEVELS[room(module)]:
                wrong.append(f"{module} ({room(module)}) imports {target} ({room(target)})")
    return sorted(wrong)


def circle(edges: dict[str, set[str]]) -> list[str]:
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as err:
        return err.args[1]
    return []


def test_every_module_lives_in_a_room_whose_init_says_what_it_holds_and_may_import():
    rooms = {p.parent.name for p in INFRA.glob("*/__init__.py")}
    assert rooms == set(LEVELS) - {"__main__"}, rooms
    assert {p.name for p in INFRA.glob("*.py")} == {"__main__.py"}
    for name in rooms:
        doc = ast.get_docstring(ast.parse((INFRA / name / "__init__.py").read_text())) or ""
        assert "import" in doc.lower(), f"infra/{name}/__init__.py does not say what it may import"


def test_no_room_imports_a_room_above_or_beside_it():
    edges = graph()
    assert sum(len(t) for t in edges.values()) > 100  # the parse found the imports
    assert not upward_imports(edges), "\n".join(upward_imports(edges))


def test_no_module_imports_itself_through_others():
    assert circle(graph()) == []


def test_the_checks_see_a_circle_and_an_upward_import():
    edges = {"infra.stackfile.config": {"infra.stackfile.limits"}, "infra.stackfile.limits": {"infra.stackfile.config"}}
    assert circle(edges)
    assert upward_imports({"infra.stackfile.config": {"infra.specs.topology"}, "infra.specs.topology": set()})
    assert upward_imports({"infra.aws.stack": {"infra.local.runner"}, "infra.local.runner": set()})
