"""The `journal` command: thin shells over the library.

Heavy modules are imported inside the commands so that `journal inspect` starts fast.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from journal.config import Settings
from journal.errors import JournalError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class Journal:
    """What commands share: settings, and the database opened (and upgraded) on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        """The database engine, with the schema brought up to date."""
        from journal import db

        engine = db.make_engine(self.settings.database_url)
        db.ensure_schema(engine)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory bound to the engine."""
        from journal import db

        return db.make_session_factory(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction; library errors become click errors."""
        with self.sessions() as session, session.begin():
            yield session


pass_journal = click.make_pass_decorator(Journal)


def reports_errors(func: F) -> F:
    """Turn library exceptions into click's one-line errors."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except JournalError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="JOURNAL_HOME",
    help="Data home (journal.db, uploads/, exports/). Default: $JOURNAL_HOME or the current folder.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="journal")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, verbose: int) -> None:
    """An offline-first travel photo journal.

    Example: journal --home ~/trip import ~/DCIM --trip "Pyongyang 2026"
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Journal(Settings.from_env(home))


@cli.command("inspect")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (the only output format for now).")
def inspect_cmd(files: tuple[Path, ...], as_json: bool) -> None:
    """Read each file's metadata without touching the database.

    Example: journal inspect IMG_0001.HEIC DSC_0002.JPG --json
    """
    from journal.metadata import inspect_file

    results = [inspect_file(str(path)) for path in files]
    click.echo(json.dumps(results, ensure_ascii=False, indent=1 if as_json else None))
    if any(r["error"] for r in results):
        sys.exit(1)


@cli.group("user")
def user_group() -> None:
    """Manage accounts."""


@user_group.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_journal
@reports_errors
def user_add_cmd(journal: Journal, name: str, password_stdin: bool) -> None:
    """Create an account (the first one is the owner).

    Example: echo 's3cret-pass' | journal user add alice --password-stdin
    """
    from journal.services import users

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with journal.transaction() as session:
        user = users.create_user(session, name, password)
        role = "owner" if user.is_owner else "user"
    click.echo(f"created {role} {name}")


@cli.group("token")
def token_group() -> None:
    """Manage API tokens."""


@token_group.command("add")
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@pass_journal
@reports_errors
def token_add_cmd(journal: Journal, user_name: str | None) -> None:
    """Print a new API token for /api/* (shown once, stored hashed).

    Example: journal token add --user alice
    """
    from journal.services import users

    with journal.transaction() as session:
        token = users.create_token(session, users.get_user(session, user_name))
    click.echo(token)


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@click.option("--trip", "trip_title", help="Put the photos in this trip (created when missing).")
@click.option("--strict", is_flag=True, help="Stop at the first file that fails.")
@pass_journal
@reports_errors
def import_cmd(
    journal: Journal, paths: tuple[Path, ...], user_name: str | None, trip_title: str | None, strict: bool
) -> None:
    """Import photos from files and folders (recursively); each photo becomes a post.

    Example: journal import ~/DCIM/100APPLE --trip "Korea 2026"
    """
    from journal.services import importing, users

    with journal.transaction() as session:
        user_id = users.get_user(session, user_name).id
    options = importing.ImportOptions(user_id=user_id, trip_title=trip_title)
    exclude = (journal.settings.uploads_dir, journal.settings.exports_dir)
    candidates = list(importing.discover(paths, exclude=exclude))
    importer = importing.Importer(journal.settings, journal.sessions, options)
    with click.progressbar(
        length=len(candidates), label="importing", file=sys.stderr, show_pos=True
    ) as bar:

        def advance(result: importing.FileResult) -> None:
            bar.update(1)
            if strict and result.status == "failed":
                raise click.ClickException(f"{result.name}: {result.error}")

        summary = importer.run(candidates, on_result=advance)
    for result in summary.results:
        if result.status != "imported":
            reason = f": {result.error}" if result.error else ""
            click.echo(f"{result.status}: {result.name}{reason}", err=True)
    click.echo(summary.line())
    if summary.count("failed"):
        sys.exit(1)


@cli.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@pass_journal
def db_upgrade_cmd(journal: Journal) -> None:
    """Apply schema migrations up to the newest.

    Example: JOURNAL_DATABASE_URL=postgresql+psycopg://journal@127.0.0.1/journal journal db upgrade
    """
    from journal import db

    click.echo(f"database at revision {db.current_revision(journal.engine)}")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@pass_journal
def serve_cmd(journal: Journal, host: str, port: int) -> None:
    """Serve the web app with a production WSGI server (waitress).

    Example: journal --home ~/journal serve --port 8080
    """
    from journal.app import create_app, serve

    app = create_app(journal.settings)
    click.echo(f"journal: serving {journal.settings.home} at http://{host}:{port}/ (Ctrl-C stops)", err=True)
    serve(app, host, port)
