"""The direction of imports: cli -> app -> web -> services -> plain modules, never back; and who owns
a transaction in journal/services (a Session's caller, or a run_* job given the session factory).

journal.media and journal.publish are packages of plain modules: they never import the use cases
(journal.services) nor anything above them. No module of tests/, bench/ or scripts/ imports the tests'
conftest.py (it holds fixtures and hooks; the helpers are in tests/web.py, tests/samples.py and so on).

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


@pytest.mark.parametrize("name", [n for n in PLAIN if _is_under(n, "journal.media")])
def test_media_does_not_import_publish(name: str) -> None:
    """Photos sit below exports: renditions are planned from a geometry.Frame, not from a platform."""
    bad = [i.module for i in IMPORTS[name] if _is_under(i.module, "journal.publish")]
    assert bad == [], f"{name} imports {bad}"


def _cycle(scope: set[str], *, module_level_only: bool) -> list[str] | None:
    """An import cycle among the modules of scope (as a path that ends where it starts), or None."""
    graph = {
        name: {
            i.module
            for i in IMPORTS[name]
            if i.module in scope and i.module != name and not (module_level_only and i.in_function)
        }
        for name in scope
    }
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name) :] + [name]
        if name in done:
            return None
        for target in sorted(graph[name]):
            if found := visit(target, [*path, name]):
                return found
        done.add(name)
        return None

    return next((c for c in (visit(name, []) for name in sorted(scope)) if c), None)


def test_no_import_cycle_between_the_app_and_the_web_layer() -> None:
    """Not even through an import inside a function."""
    assert _cycle({"journal.app", *WEB}, module_level_only=False) is None


def test_no_import_cycle_anywhere_in_the_package() -> None:
    """Module-level imports only: a function may import a module above it lazily (the CLI does)."""
    assert _cycle(MODULES - {"journal.__main__"}, module_level_only=True) is None


def test_the_cycle_finder_finds_one() -> None:
    IMPORTS["journal.geo"].append(Import("journal.route", False))
    IMPORTS["journal.route"].append(Import("journal.geo", False))
    try:
        assert _cycle({"journal.geo", "journal.route"}, module_level_only=True) == [
            "journal.geo",
            "journal.route",
            "journal.geo",
        ]
    finally:
        IMPORTS["journal.geo"].pop()
        IMPORTS["journal.route"].pop()


def test_importing_the_request_context_does_not_import_the_app() -> None:
    code = "import sys, journal.web.context; print('journal.app' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- who owns the transaction (journal/services/__init__.py) --------------------------------------

SERVICES = PACKAGE / "services"
#: What only the owner of a transaction may call on its session.
OWNER_ONLY = {"commit", "rollback", "begin", "close"}


@dataclass(frozen=True)
class Function:
    """A def in journal/services: where it is, what its parameters are annotated with, and its body."""

    module: str
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    #: The top-level def or class it sits in (itself at the top).
    top: str

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def where(self) -> str:
        return f"{self.module}.{self.qualname} (line {self.node.lineno})"

    @property
    def is_public(self) -> bool:
        """No private part in its name; a nested def is never public, a class's __init__ is its class's."""
        parts = self.qualname.split(".")
        return "<locals>" not in parts and not any(
            p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts
        )

    def params(self, kind: str) -> list[str]:
        """The parameters annotated as a session factory ("factory") or as a Session ("session")."""
        args = self.node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        return [a.arg for a in every if a.annotation is not None and _annotation_kind(a.annotation) == kind]


def _annotation_kind(annotation: ast.expr) -> str | None:
    """What a parameter is by its annotation: "factory" (sessionmaker[...]), "session" (Session), or None."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        kinds = {_annotation_kind(annotation.left), _annotation_kind(annotation.right)} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    if isinstance(annotation, ast.Subscript):
        return "factory" if _last_name(annotation.value) == "sessionmaker" else None
    return "session" if _last_name(annotation) == "Session" else None


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def functions_of(path: Path) -> list[Function]:
    """Every def in a file, methods and nested ones included."""
    module = module_name(path)
    found: list[Function] = []

    def visit(node: ast.AST, prefix: str, top: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                qualname = prefix + child.name
                found.append(Function(module, qualname, child, top or child.name))
                visit(child, qualname + ".<locals>.", top or child.name)
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".", top or child.name)
            else:
                visit(child, prefix, top)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "", None)
    return found


SERVICE_FUNCTIONS = [f for path in sorted(SERVICES.rglob("*.py")) for f in functions_of(path)]


def _owner_calls(function: Function) -> list[str]:
    """Calls like session.commit() on a parameter annotated Session."""
    sessions = set(function.params("session"))
    return [
        f"{node.func.value.id}.{node.func.attr}() on line {node.lineno}"
        for node in ast.walk(function.node)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in OWNER_ONLY
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in sessions
    ]


def test_the_walk_sees_both_kinds_of_service_function() -> None:
    by_name = {f"{f.module}.{f.qualname}": f for f in SERVICE_FUNCTIONS}
    job = by_name["journal.services.exporting.run_export"]
    assert job.is_public and job.params("factory") == ["factory"]
    use_case = by_name["journal.services.trips.create_trip"]
    assert use_case.is_public and use_case.params("session") == ["session"] and not use_case.params("factory")
    assert not by_name["journal.services.exporting._run_export"].is_public
    assert "journal.services.importing._Importer.__init__" in by_name


def test_public_service_functions_that_take_the_session_factory_are_run_jobs() -> None:
    bad = [
        f.where
        for f in SERVICE_FUNCTIONS
        if f.is_public and f.params("factory") and not f.name.startswith("run_")
    ]
    assert bad == [], (
        f"{bad} take a sessionmaker: take a Session and let the caller own the transaction,"
        " or, for a job that commits in steps, name it run_*"
    )


def test_run_jobs_take_the_session_factory() -> None:
    bad = [f.where for f in SERVICE_FUNCTIONS if f.name.startswith("run_") and not f.params("factory")]
    assert bad == [], f"{bad} are named as jobs but take no sessionmaker[Session]"


def test_service_functions_given_a_session_leave_its_transaction_to_the_caller() -> None:
    bad = [f"{f.where}: {call}" for f in SERVICE_FUNCTIONS for call in _owner_calls(f)]
    assert bad == [], f"{bad}: the caller owns the transaction (flush, never commit)"


def test_private_helpers_that_take_the_factory_serve_run_jobs_only() -> None:
    """A private def (or private class) taking the factory is used only in a job or another such helper."""
    for path in sorted(SERVICES.rglob("*.py")):
        functions = functions_of(path)
        helpers = {
            f.top for f in functions if not f.is_public and f.params("factory") and f.top.startswith("_")
        }
        allowed = helpers | {f.name for f in functions if f.name.startswith("run_") and f.top == f.name}
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for top in tree.body:
            users = {n.id for n in ast.walk(top) if isinstance(n, ast.Name) and n.id in helpers}
            name = getattr(top, "name", None)
            if users and name not in allowed:
                where = f"{module_name(path)}.{name or type(top).__name__}"
                pytest.fail(f"{where} uses {sorted(users)}, which take the factory for run_* jobs only")


# --- conftest.py holds fixtures and hooks; the helpers the tests import live in their own modules -----

ROOT = PACKAGE.parent
#: Folders whose modules may import the test helpers.
TEST_IMPORTERS = ("tests", "bench", "scripts")


def conftest_imports(path: Path) -> list[int]:
    """The lines of a file that import the tests' conftest.py (absolutely, relatively or bare)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            named = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            named = [source, *(f"{source}.{alias.name}" if source else alias.name for alias in node.names)]
        else:
            continue
        if any(name.split(".")[-1] == "conftest" for name in named):
            lines.append(node.lineno)
    return lines


def test_the_conftest_check_sees_each_way_of_importing_it(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    lines = [
        "import tests.{c}",
        "from tests.{c} import x",
        "from tests import {c}",
        "from . import {c} as c",
        "from .{c} import y",
        "import {c}",
        "def f():",
        "    from tests.{c} import z",
        "from tests.web import sign_in",
        "import tests.samples",
    ]
    module.write_text("\n".join(lines).format(c="conftest") + "\n", encoding="utf-8")
    assert conftest_imports(module) == [1, 2, 3, 4, 5, 6, 8]


def test_no_module_imports_conftest() -> None:
    """conftest.py holds fixtures and hooks only: a helper a test needs lives in a module named for it."""
    modules = sorted(path for folder in TEST_IMPORTERS for path in (ROOT / folder).rglob("*.py"))
    assert ROOT / "tests" / "conftest.py" in modules
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in modules for line in conftest_imports(path)]
    assert offenders == [], "these import conftest.py; import its helpers from their modules"
