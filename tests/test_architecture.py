"""The direction of imports: cli -> app -> web -> services -> plain modules, never back.

journal.media and journal.publish are packages of plain modules: they never import the use cases
(journal.services) nor anything above them.

Read from the modules' ASTs (nothing is imported), so an import hidden inside a function counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "journal"
#: The layers above the library: nothing below them may import them.
UPPER = ("journal.app", "journal.cli", "journal.web")
#: Packages of plain modules: below the use cases too.
PLAIN_PACKAGES = ("journal.media", "journal.publish")
#: What a plain module never imports.
ABOVE_PLAIN = ("journal.services", *UPPER)


@dataclass(frozen=True)
class Import:
    """One imported module, and whether the import runs only when a function is called."""

    module: str
    in_function: bool


def module_name(path: Path) -> str:
    """journal/web/auth.py -> "journal.web.auth"; a package's __init__.py names the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    """The absolute module of a `from ... import`, relative ones included."""
    if not node.level:
        return node.module or ""
    base = here.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path) -> list[Import]:
    """Every module a file imports; `from pkg import sub` names pkg.sub when sub is a module of it."""
    here, is_package = module_name(path), path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                source = _resolve(child, here, is_package)
                found.append(Import(source, inside))
                found.extend(
                    Import(f"{source}.{alias.name}", inside)
                    for alias in child.names
                    if f"{source}.{alias.name}" in MODULES
                )
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


FILES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
MODULES = set(FILES)
IMPORTS = {name: imports_of(path) for name, path in FILES.items()}
WEB = sorted(name for name in MODULES if _is_under(name, "journal.web"))
LOWER = sorted(
    name for name in MODULES if name != "journal.__main__" and not any(_is_under(name, u) for u in UPPER)
)
PLAIN = sorted(name for name in MODULES if any(_is_under(name, p) for p in PLAIN_PACKAGES))


def test_the_walk_sees_the_layers() -> None:
    assert {"journal.app", "journal.web.context", "journal.web.auth", "journal.services.maps"} <= MODULES
    assert "journal.services.maps" in LOWER and "journal.geo" in LOWER and "journal.web.maps" not in LOWER
    assert Import("journal.web.context", False) in IMPORTS["journal.web.auth"]
    assert {"journal.media.heif", "journal.publish.zipbundle", "journal.publish.emailbundle"} <= set(PLAIN)
    assert "journal.media" in PLAIN and "journal.services.exporting" not in PLAIN
    assert Import("journal.publish.zipbundle", False) in IMPORTS["journal.services.exporting"]


@pytest.mark.parametrize("name", WEB)
def test_web_modules_do_not_import_the_app(name: str) -> None:
    bad = [i.module for i in IMPORTS[name] if _is_under(i.module, "journal.app") or i.module == "journal.cli"]
    assert bad == [], f"{name} imports {bad}: take the request context from journal.web.context"


def test_the_app_imports_the_web_layer_at_the_top_only() -> None:
    app = IMPORTS["journal.app"]
    hidden = [i.module for i in app if i.in_function and _is_under(i.module, "journal.web")]
    assert hidden == []
    assert Import("journal.web", False) in app


@pytest.mark.parametrize("name", LOWER)
def test_library_modules_do_not_import_the_layers_above(name: str) -> None:
    bad = [i.module for i in IMPORTS[name] if any(_is_under(i.module, u) for u in UPPER)]
    assert bad == [], f"{name} imports {bad}"


@pytest.mark.parametrize("name", PLAIN)
def test_plain_modules_do_not_import_the_use_cases_or_above(name: str) -> None:
    bad = [i.module for i in IMPORTS[name] if any(_is_under(i.module, a) for a in ABOVE_PLAIN)]
    assert bad == [], f"{name} imports {bad}: media and publish are plain modules below journal.services"


def test_no_import_cycle_between_the_app_and_the_web_layer() -> None:
    scope = {"journal.app", *WEB}
    graph = {
        name: {i.module for i in IMPORTS[name] if i.module in scope and i.module != name} for name in scope
    }
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name) :] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(scope):
        visit(name, [])


def test_importing_the_request_context_does_not_import_the_app() -> None:
    code = "import sys, journal.web.context; print('journal.app' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
