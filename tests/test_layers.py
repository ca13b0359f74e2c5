"""The arrows between Herold's layers run one way (see ../shared/HOUSE.md and the README's Layout).

Read from the source with `ast`, so that an import inside a function counts as much as one at the
top of a module (it closes a cycle all the same, only later); imports under `if TYPE_CHECKING:`
do not count, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# What app.services may use of app.federation: the publisher, nothing behind it.
SERVICES_MAY_IMPORT_FROM_FEDERATION = {"app.federation.publisher"}
# AS2 is built by the publisher (and the routes that serve it), never by a service.
AS2_BUILDERS = {"app.activitypub.activities", "app.activitypub.renderers"}
WEB_MODULES_ALLOWED_OUTSIDE_WEB: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(module: str, tree: ast.AST, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                # `from app.activitypub import activities` imports the module app.activitypub.activities.
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name == "app" or name.startswith("app.")}


def import_graph() -> dict[str, set[str]]:
    sources = {module_name(path): path for path in APP.rglob("*.py")}
    known = set(sources)
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        imported = _imports(module, ast.parse(path.read_text(), str(path)), known)
        # Importing app.x.y runs app.x's __init__ too, but those are empty: count the module only.
        graph[module] = {name for name in imported if name in known and name != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def arrows(graph: dict[str, set[str]], source_prefix: str) -> list[tuple[str, str]]:
    return sorted(
        (module, target)
        for module, targets in graph.items()
        if module == source_prefix or module.startswith(source_prefix + ".")
        for target in targets
    )


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_import_cycles_between_app_modules() -> None:
    assert cycles(import_graph()) == []


def test_services_know_no_web_api_or_federation_internals() -> None:
    wrong = [
        (module, target)
        for module, target in arrows(import_graph(), "app.services")
        if under(target, "app.web")
        or under(target, "app.api")
        or under(target, "app.cli")
        or (under(target, "app.federation") and target not in SERVICES_MAY_IMPORT_FROM_FEDERATION)
        or target in AS2_BUILDERS
    ]
    assert wrong == []


def test_activitypub_knows_no_web_and_no_federation() -> None:
    # The protocol edge is used by the inbox handlers and the publisher, not the other way round.
    wrong = [
        (module, target)
        for module, target in arrows(import_graph(), "app.activitypub")
        if (under(target, "app.web") and target not in WEB_MODULES_ALLOWED_OUTSIDE_WEB)
        or under(target, "app.federation")
        or under(target, "app.api")
        or under(target, "app.cli")
    ]
    assert wrong == []


def test_models_import_nothing_above_them() -> None:
    allowed = ("app.models", "app.i18n")
    wrong = [
        (module, target)
        for module, target in arrows(import_graph(), "app.models")
        if not any(under(target, package) for package in allowed)
    ]
    assert wrong == []


def test_the_checks_see_imports_inside_functions_but_not_type_checking_ones() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from app.web import pages\n"
        "def f():\n    from app.federation import worker\n"
    )
    found = _imports("app.services.example", tree, {"app.federation.worker", "app.web.pages"})
    assert found == {"app.federation.worker"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
