"""The `journal` command: thin shells over the library.

Heavy modules are imported inside the commands so that `journal inspect` starts fast.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
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


def account_scope(session: Session, user_name: str | None, *, all_users: bool) -> int | None:
    """The id of --user NAME (or of the only account), or None for --all-users."""
    from journal.errors import InvalidInput
    from journal.services import users

    if all_users:
        if user_name:
            raise InvalidInput("give either --user NAME or --all-users, not both")
        return None
    if user_name is None and users.count_users(session) > 1:
        raise InvalidInput(
            "several accounts exist: say which with --user NAME, or --all-users for every account"
        )
    return users.get_user(session, user_name).id


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
    from journal.media.inspectjson import inspect_file

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

    password = _read_password(password_stdin, "Password")
    with journal.transaction() as session:
        user = users.create_user(session, name, password)
        role = "owner" if user.is_owner else "user"
    click.echo(f"created {role} {name}")


@user_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@pass_journal
@reports_errors
def user_passwd_cmd(journal: Journal, name: str, password_stdin: bool) -> None:
    """Set a new password for an account and sign out every one of its sessions.

    API tokens stay valid (list and revoke them with `journal token list` / `journal token revoke`).

    Example: echo 'n3w-s3cret-pass' | journal user passwd alice --password-stdin
    """
    from journal.services import users

    password = _read_password(password_stdin, "New password")
    with journal.transaction() as session:
        ended = users.set_password(session, users.get_user(session, name), password)
    click.echo(f"password changed for {name}; {ended} session{'' if ended == 1 else 's'} signed out")


def _read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


@cli.group("token")
def token_group() -> None:
    """Manage API tokens."""


@token_group.command("add")
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@click.option("--name", "label", help="What the token is for (shown by `journal token list`).")
@click.option(
    "--expires-days",
    type=click.IntRange(1, 3650),
    help="Refuse the token after this many days (default: never expires).",
)
@pass_journal
@reports_errors
def token_add_cmd(
    journal: Journal, user_name: str | None, label: str | None, expires_days: int | None
) -> None:
    """Print a new API token for /api/* (shown once, stored hashed); only the token goes to stdout.

    Example: journal token add --user alice --name phone --expires-days 90
    """
    from journal.services import users

    with journal.transaction() as session:
        token = users.create_token(
            session, users.get_user(session, user_name), label, expires_days=expires_days
        )
    click.echo(token)


@token_group.command("list")
@click.option("--user", "user_name", help="Only this account's tokens (default: every account's).")
@pass_journal
@reports_errors
def token_list_cmd(journal: Journal, user_name: str | None) -> None:
    """List API tokens: id, account, name, created, last used, expires (times in UTC).

    Example: journal token list --user alice
    """
    from journal.services import users

    with journal.transaction() as session:
        user = users.get_user(session, user_name) if user_name else None
        rows = users.list_tokens(session, user)
    click.echo("\t".join(("id", "user", "name", "created", "last used", "expires")))
    for row in rows:
        expires = (_utc_minute(row.expires_at) or "never") + (" (expired)" if row.expired else "")
        used = _utc_minute(row.last_used_at) or "never"
        cells = (str(row.id), row.user, row.name or "-", _utc_minute(row.created_at), used, expires)
        click.echo("\t".join(cells))


def _utc_minute(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@token_group.command("revoke")
@click.argument("token_id", type=int)
@pass_journal
@reports_errors
def token_revoke_cmd(journal: Journal, token_id: int) -> None:
    """Revoke an API token by its id (from `journal token list`): it is refused from now on.

    Example: journal token revoke 3
    """
    from journal.services import users

    with journal.transaction() as session:
        name = users.revoke_token(session, token_id)
    click.echo(f"revoked token {token_id}{f' ({name})' if name else ''}")


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A duration such as 5m, 45m, 1h30m, 90s or 0:10, in seconds (at most a day)."""
    from journal.config import duration_s

    if value is None:
        return None
    try:
        seconds = duration_s(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    if seconds > 86_400:
        raise click.BadParameter("at most one day (24h)", ctx, param)
    return seconds


def placing_options(func: F) -> F:
    """--max-gap and --nearest: the rule for placing photos on GPS tracks."""
    func = click.option(
        "--nearest",
        callback=_duration,
        help="Also place photos up to this long before or after a track (or beside a longer gap) "
        "at the nearest point, as exiftool -geotag does (off by default; e.g. 30m).",
    )(func)
    return click.option(
        "--max-gap",
        callback=_duration,
        help="Longest time between two track points a photo is placed across (default 5m; e.g. 45m).",
    )(func)


def policy_from(journal: Journal, max_gap: int | None, nearest: int | None) -> Any:
    """The placing rule from --max-gap/--nearest, or None when neither was given."""
    from journal.geotag import PlacePolicy

    if max_gap is None and nearest is None:
        return None
    settings = journal.settings
    return PlacePolicy(
        max_gap_s=settings.track_max_gap_s if max_gap is None else max_gap,
        nearest_s=settings.track_nearest_s if nearest is None else nearest,
    )


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@click.option("--trip", "trip_title", help="Put the photos in this trip (created when missing).")
@click.option("--strict", is_flag=True, help="Stop at the first file that fails.")
@placing_options
@pass_journal
@reports_errors
def import_cmd(
    journal: Journal,
    paths: tuple[Path, ...],
    user_name: str | None,
    trip_title: str | None,
    strict: bool,
    max_gap: int | None,
    nearest: int | None,
) -> None:
    """Import photos and GPX tracks from files and folders (recursively); each photo becomes a post.

    Photos without a position of their own are placed on the GPX tracks by their time; with --trip,
    --max-gap/--nearest are kept as the trip's rule.

    Example: journal import ~/DCIM/100APPLE walk.gpx --trip "Korea 2026" --max-gap 45m
    """
    from journal.services import importing, users

    with journal.transaction() as session:
        user_id = users.get_user(session, user_name).id
    options = importing.ImportOptions(
        user_id=user_id, trip_title=trip_title, policy=policy_from(journal, max_gap, nearest)
    )
    exclude = (journal.settings.uploads_dir, journal.settings.exports_dir)
    candidates = list(importing.discover(paths, exclude=exclude))
    with click.progressbar(length=len(candidates), label="importing", file=sys.stderr, show_pos=True) as bar:

        def advance(result: importing.FileResult) -> None:
            bar.update(1)
            if strict and result.status == "failed":
                raise click.ClickException(f"{result.name}: {result.error}")

        summary = importing.run_import(journal.settings, journal.sessions, options, candidates, advance)
    for result in summary.results:
        if result.status != "imported":
            reason = f": {result.error}" if result.error else ""
            click.echo(f"{result.status}: {result.name}{reason}", err=True)
        elif result.note:
            click.echo(f"track: {result.name}: {result.note}", err=True)
    placement = summary.placement_line()
    if placement:
        click.echo(placement, err=True)
    click.echo(summary.line())
    if summary.count("failed"):
        sys.exit(1)


def _user_trip(session: Session, user_name: str | None, title: str) -> tuple[int, int]:
    from sqlalchemy import select

    from journal.errors import NotFound
    from journal.models import Trip
    from journal.services import users

    user_id = users.get_user(session, user_name).id
    trip_id = session.scalar(select(Trip.id).where(Trip.user_id == user_id, Trip.title == title))
    if trip_id is None:
        raise NotFound(f"no trip called {title!r}")
    return user_id, trip_id


@cli.command("place")
@click.option("--trip", "trip_title", required=True, help="The trip whose photos to place.")
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@placing_options
@pass_journal
@reports_errors
def place_cmd(
    journal: Journal, trip_title: str, user_name: str | None, max_gap: int | None, nearest: int | None
) -> None:
    """Place a trip's photos from its GPS tracks again, and report what moved.

    Photos with a position from the camera or set by hand are never changed. A rule given with
    --max-gap/--nearest is kept on the trip (later clock fixes use it too).

    Example: journal place --trip "Korea 2026" --max-gap 45m --nearest 30m
    """
    from journal.services import geotagging

    with journal.transaction() as session:
        user_id, trip_id = _user_trip(session, user_name, trip_title)
        policy = policy_from(journal, max_gap, nearest)
        report = geotagging.place_trip(session, journal.settings, user_id, trip_id, policy=policy)
    click.echo(report.summary())


@cli.command("clock")
@click.option("--trip", "trip_title", required=True, help="The trip whose photos to fix.")
@click.option(
    "--camera", required=True, help='"MAKE MODEL" as the trip page lists it ("unknown camera" too).'
)
@click.option("--shift", required=True, help="How far the camera was off: +H:MM or -H:MM (e.g. +0:10).")
@click.option("--user", "user_name", help="Account name (may be left out when there is one account).")
@pass_journal
@reports_errors
def clock_cmd(journal: Journal, trip_title: str, camera: str, shift: str, user_name: str | None) -> None:
    """Fix one camera's clock on a trip: move its photos' times, then place them from the tracks again.

    Example: journal clock --trip "Korea 2026" --camera "Apple iPhone 15" --shift +0:10
    """
    from journal.services import editing, geotagging

    with journal.transaction() as session:
        user_id, trip_id = _user_trip(session, user_name, trip_title)
        fix = geotagging.fix_camera_clock(
            session,
            journal.settings,
            user_id,
            trip_id,
            geotagging.camera_by_name(session, user_id, trip_id, camera),
            editing.parse_shift(shift),
        )
    click.echo(fix.summary())


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

    run = integrity.run_repair if repair else integrity.run_check
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
@click.option(
    "--to",
    help="Send every message to this one address (instead of its To header); your choice as the operator.",
)
@click.option(
    "--user",
    "user_name",
    help="Only this account's e-mail bundles (may be left out when there is one account).",
)
@click.option("--all-users", is_flag=True, help="Every account's e-mail bundles (instead of --user).")
@click.option(
    "--retries", default=3, show_default=True, type=click.IntRange(0, 10), help="Tries after a failure."
)
@pass_journal
@reports_errors
def send_cmd(
    journal: Journal, smtp_url: str, to: str | None, user_name: str | None, all_users: bool, retries: int
) -> None:
    """Send one account's pending e-mail bundles, each exactly once; report what was sent and what failed.

    A message is recorded as sent as soon as the server accepts it, so running this again (or after
    a crash) sends only the rest. Each goes to one address: --to, else its own To header, which for
    accounts other than the owner must be on JOURNAL_MAIL_ALLOWED_RECIPIENTS. With several accounts
    say whose with --user NAME, or --all-users. Exit status 1 when any message failed.

    Example: JOURNAL_SMTP_URL=smtps://me%40example.org:pw@mail.example.org journal send --to a@b.example
    """
    from journal.services import publishing

    with journal.transaction() as session:
        user_id = account_scope(session, user_name, all_users=all_users)
    outcome = publishing.run_send_pending(
        journal.sessions, smtp_url, user_id=user_id, to=to, retries=retries, settings=journal.settings
    )
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
    from journal.services import tilesets

    with journal.transaction() as session:
        row = tilesets.register_tile_set(session, journal.settings, file, link=link)
        line = (
            f"registered {row.name} ({row.format}, {row.tile_type}, zoom {row.min_zoom}-{row.max_zoom})"
            f" at {row.path}"
        )
    click.echo(line)


# --- bundles: list and delete what `journal export` wrote -------------------------------------------


def account_options(func: F) -> F:
    """--user NAME / --all-users, as `journal send` has them."""
    func = click.option("--all-users", is_flag=True, help="Every account's bundles (instead of --user).")(
        func
    )
    return click.option(
        "--user", "user_name", help="Account name (may be left out when there is one account)."
    )(func)


def size_text(size: int) -> str:
    """Bytes for people, in SI units (1 MB = 1,000,000 bytes)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _utc_text(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


@cli.group("bundles")
def bundles_group() -> None:
    """Bundles written by `journal export`: list them and delete them (record and file)."""


@bundles_group.command("list")
@account_options
@pass_journal
@reports_errors
def bundles_list_cmd(journal: Journal, user_name: str | None, all_users: bool) -> None:
    """List bundles, oldest first: id, file, size, created (UTC) and published (when, or "no").

    Example: journal bundles list --user alice
    """
    from journal.services import publishing

    with journal.transaction() as session:
        rows = publishing.bundle_table(session, account_scope(session, user_name, all_users=all_users))
        lines = [
            "\t".join(
                (
                    str(export.id),
                    export.name,
                    size_text(export.bytes),
                    _utc_text(export.created_at),
                    _utc_text(published) if published else "no",
                )
            )
            for export, published in rows
        ]
    click.echo("ID\tFILE\tSIZE\tCREATED\tPUBLISHED")
    for line in lines:
        click.echo(line)


def _remove(journal: Journal, user_id: int | None, ids: list[int]) -> list[str]:
    """Delete the bundles' records (one transaction), then their files; print each; return problems."""
    from journal.services import publishing

    with journal.transaction() as session:
        removed = publishing.delete_bundles(session, user_id, ids)
    problems = publishing.remove_bundle_files(removed)
    for item in removed:
        click.echo(f"removed: {item.name} ({size_text(item.bytes)})")
    for problem in problems:
        click.echo(f"kept file: {problem}", err=True)
    return problems


@bundles_group.command("rm")
@click.argument("ids", nargs=-1, required=True, type=click.IntRange(min=1))
@account_options
@pass_journal
@reports_errors
def bundles_rm_cmd(journal: Journal, ids: tuple[int, ...], user_name: str | None, all_users: bool) -> None:
    """Delete bundles by id (see `journal bundles list`): the record and the file.

    Their posts count as not exported again for that platform (unless another bundle holds them);
    posts already published stay published. A pending e-mail bundle is then never sent. A file
    that changed since it was written is left in place and reported. Any id that is not a bundle
    of the account stops the command before anything is deleted.

    Example: journal bundles rm 12 13
    """
    with journal.transaction() as session:
        user_id = account_scope(session, user_name, all_users=all_users)
    if _remove(journal, user_id, list(ids)):
        sys.exit(1)


@bundles_group.command("prune")
@click.option(
    "--older-than",
    "older_than",
    type=click.FloatRange(min=0),
    help="Also bundles made more than DAYS days ago (published or not).",
    metavar="DAYS",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@account_options
@pass_journal
@reports_errors
def bundles_prune_cmd(
    journal: Journal, older_than: float | None, dry_run: bool, user_name: str | None, all_users: bool
) -> None:
    """Delete bundles already published, and with --older-than DAYS those older than that.

    Example: journal bundles prune --older-than 30 --dry-run
    """
    from journal.models import Export
    from journal.services import publishing

    with journal.transaction() as session:
        user_id = account_scope(session, user_name, all_users=all_users)
        ids = publishing.prunable_bundles(session, user_id, older_than_days=older_than)
        sizes = {i: (e.name, e.bytes) for i in ids if (e := session.get(Export, i)) is not None}
    total = sum(size for _, size in sizes.values())
    plural = "" if len(ids) == 1 else "s"
    if dry_run:
        for name, _ in sizes.values():
            click.echo(f"would remove: {name}")
        click.echo(f"would remove {len(ids)} bundle{plural} ({size_text(total)})")
        return
    problems = _remove(journal, user_id, ids) if ids else []
    click.echo(f"removed {len(ids)} bundle{plural}, freed up to {size_text(total)}")
    if problems:
        sys.exit(1)
