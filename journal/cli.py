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
        from journal.services import housekeeping

        housekeeping.secure_home(self.settings)
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
    with click.progressbar(length=len(candidates), label="importing", file=sys.stderr, show_pos=True) as bar:

        def advance(result: importing.FileResult) -> None:
            bar.update(1)
            if strict and result.status == "failed":
                raise click.ClickException(f"{result.name}: {result.error}")

        summary = importer.run(candidates, on_result=advance)
    for result in summary.results:
        if result.status != "imported":
            reason = f": {result.error}" if result.error else ""
            click.echo(f"{result.status}: {result.name}{reason}", err=True)
        elif result.note:
            click.echo(f"track: {result.name}: {result.note}", err=True)
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


@cli.command("check")
@click.option(
    "--repair",
    is_flag=True,
    help="Re-index orphan originals, rebuild missing renditions (deletes no original).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@pass_journal
@reports_errors
def check_cmd(journal: Journal, repair: bool, as_json: bool) -> None:
    """Check that the database and uploads/ agree: rows without files, files without rows, hash mismatches.

    Every stored file is read and hashed. Exit status 1 when anything disagrees. With --repair,
    originals no row points at are re-indexed from their own bytes (metadata, renditions, a row
    for the user whose folder holds them, each its own post), missing renditions are made again,
    and a database that was refused as the wrong one becomes this data home's own: first check
    JOURNAL_DATABASE_URL. No original is ever deleted.

    Example: journal --home ~/journal check --repair
    """
    from journal.services import integrity

    run = integrity.repair if repair else integrity.check
    report = run(journal.settings, journal.sessions)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        for line in report.repaired:
            click.echo(f"repair: {line}")
        for problem in report.problems:
            click.echo(problem.line())
        click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@pass_journal
@reports_errors
def serve_cmd(journal: Journal, host: str, port: int) -> None:
    """Serve the web app with a production WSGI server (waitress).

    Example: journal --home ~/journal serve --port 8080
    """
    from journal.app import create_app, serve

    app = create_app(journal.settings)
    click.echo(f"journal: serving {journal.settings.home} at http://{host}:{port}/ (Ctrl-C stops)", err=True)
    serve(app, host, port)


# --- export, send, published ---------------------------------------------------------------------


@cli.command("export")
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@click.option("--trip", "trip_title", help="Only the posts of this trip.")
@click.option(
    "--platform",
    default="original",
    show_default=True,
    help="Preset: original, instagram, x, mastodon, bluesky, facebook or email.",
)
@click.option(
    "--location",
    type=click.Choice(["exact", "approx", "none"]),
    default="exact",
    show_default=True,
    help="exact: positions kept; approx: ~5 km, no GPS in files; none: no position, place is the country.",
)
@click.option(
    "--max-batch-mb",
    type=click.FloatRange(min=0, min_open=True),
    help="Largest bundle in MB (1 MB = 1,000,000 bytes); a single bigger post gets a bundle of its own. "
    "Default: no limit for zip, 20 for eml.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["zip", "eml"]),
    default="zip",
    show_default=True,
    help="zip bundles, or ready-to-send e-mails (sent later by `journal send`).",
)
@click.option(
    "--all", "include_exported", is_flag=True, help="Also posts already exported for this platform."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the bundles. Default: exports/ in the data home.",
)
@click.option(
    "--from", "mail_from", default="journal@localhost", show_default=True, help="eml: From address."
)
@click.option("--to", "mail_to", help="eml: To address (else give it to `journal send --to`).")
@pass_journal
@reports_errors
def export_cmd(
    journal: Journal,
    user_name: str | None,
    trip_title: str | None,
    platform: str,
    location: str,
    max_batch_mb: float | None,
    fmt: str,
    include_exported: bool,
    out_dir: Path | None,
    mail_from: str,
    mail_to: str | None,
) -> None:
    """Write the posts not exported yet for that platform as bundles, and print each file's path.

    "Not exported yet" is per platform: posts already in a bundle for --platform are left out
    unless --all is given (so the same posts can go to Instagram, then to Mastodon). With --trip
    only that trip's posts are considered. Photos carry no serial numbers, owner names or
    embedded thumbnails; privacy zones (web page /export) hide positions in every mode.

    Example: journal export --trip "Korea 2026" --platform instagram --location approx --max-batch-mb 50
    """
    from journal.services import exporting, users

    with journal.transaction() as session:
        user_id = users.get_user(session, user_name).id
        trip_id = exporting.find_trip(session, user_id, trip_title).id if trip_title else None
    request = exporting.ExportRequest(
        user_id=user_id,
        platform=platform,
        location=location,  # type: ignore[arg-type]
        format=fmt,  # type: ignore[arg-type]
        trip_id=trip_id,
        include_exported=include_exported,
        max_batch_bytes=exporting.megabytes(max_batch_mb),
        out_dir=out_dir or journal.settings.exports_dir,
        mail_from=mail_from,
        mail_to=mail_to,
    )
    outcome = exporting.run_export(
        journal.sessions,
        journal.settings,
        request,
        on_bundle=lambda written: click.echo(str(written.path)),
    )
    for problem in outcome.problems:
        click.echo(f"left out: {problem}", err=True)
    if not outcome.posts:
        click.echo(
            f"nothing to export: no post waits for {request.platform} (--all exports them again)", err=True
        )
    else:
        posts, count = outcome.posts, len(outcome.bundles)
        plural = "" if posts == 1 else "s", "" if count == 1 else "s"
        click.echo(f"exported {posts} post{plural[0]} in {count} bundle{plural[1]}", err=True)
    if outcome.problems:
        sys.exit(1)


@cli.command("send")
@click.option(
    "--smtp",
    "smtp_url",
    required=True,
    envvar="JOURNAL_SMTP_URL",
    help="smtp://[user:password@]host:port or smtps://user:password@host:port (or $JOURNAL_SMTP_URL).",
)
@click.option("--to", help="Send every message to this address (instead of its To header).")
@click.option("--user", "user_name", help="Only this account's e-mail bundles (default: every account's).")
@click.option(
    "--retries", default=3, show_default=True, type=click.IntRange(0, 10), help="Tries after a failure."
)
@pass_journal
@reports_errors
def send_cmd(journal: Journal, smtp_url: str, to: str | None, user_name: str | None, retries: int) -> None:
    """Send the pending e-mail bundles, each exactly once, and report what was sent and what failed.

    A message is recorded as sent as soon as the server accepts it, so running this again (or after
    a crash) sends only the rest. Exit status 1 when any message failed.

    Example: JOURNAL_SMTP_URL=smtps://me%40example.org:pw@mail.example.org journal send --to a@b.example
    """
    from journal.services import publishing, users

    user_id = None
    if user_name:
        with journal.transaction() as session:
            user_id = users.get_user(session, user_name).id
    outcome = publishing.send_pending(journal.sessions, smtp_url, user_id=user_id, to=to, retries=retries)
    report = outcome.report
    for message_id in report.sent:
        click.echo(f"sent: {outcome.name(message_id)}")
    for message_id in report.skipped:
        click.echo(f"skipped (sent before): {outcome.name(message_id)}")
    for message_id, reason in report.failed:
        click.echo(f"failed: {outcome.name(message_id)}: {reason}", err=True)
    for message_id, detail in report.refused:
        click.echo(f"refused recipient: {outcome.name(message_id)}: {detail}", err=True)
    click.echo(report.summary())
    if not outcome.ok:
        sys.exit(1)


@cli.command("published")
@click.argument("bundle_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", help="Where the posts were published (http:// or https://).")
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@pass_journal
@reports_errors
def published_cmd(journal: Journal, bundle_path: Path, url: str | None, user_name: str | None) -> None:
    """Record that the posts of a bundle (zip or .eml this journal exported) were published.

    The bundle is recognised by its SHA-256, wherever the file is now.

    Example: journal published exports/korea-2026-instagram-20261123-101500-a1b2c3-1of2.zip --url https://instagram.com/p/xyz
    """
    from journal.services import publishing, users

    with journal.transaction() as session:
        user_id = users.get_user(session, user_name).id
        export = publishing.find_export_by_file(session, user_id, bundle_path)
        count = publishing.mark_published(session, export, url=url)
        name = export.name
    where = f" at {url}" if url else ""
    click.echo(f"published: {name} ({count} post{'' if count == 1 else 's'}){where}")


# --- offline map tiles ----------------------------------------------------------------------------


@cli.group("tiles")
def tiles_group() -> None:
    """Offline map tiles (MBTiles, PMTiles) drawn over the built-in basemap."""


@tiles_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--link",
    is_flag=True,
    help="Use the file where it is instead of copying it into the data home's tiles/ folder.",
)
@pass_journal
@reports_errors
def tiles_add_cmd(journal: Journal, file: Path, link: bool) -> None:
    """Register an offline raster tile set (MBTiles or PMTiles) for the map pages.

    The file is checked (PNG, JPEG or WebP tiles; vector tiles cannot be shown) and copied into
    the data home's tiles/ folder, unless --link. The map pages then draw it over the basemap,
    with its attribution; where several sets overlap, the one added last wins.

    Example: journal tiles add ~/Downloads/slovenia-osm.mbtiles
    """
    from journal.services import maps

    with journal.transaction() as session:
        row = maps.register_tile_set(session, journal.settings, file, link=link)
        line = (
            f"registered {row.name} ({row.format}, {row.tile_type}, zoom {row.min_zoom}-{row.max_zoom})"
            f" at {row.path}"
        )
    click.echo(line)
