"""After the export: post status (exported, published), marking bundles published, sending e-mail bundles."""

from __future__ import annotations

import logging
import math
import re
import ssl
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from journal import storage
from journal.config import Settings
from journal.errors import InvalidInput, JournalError, NotFound
from journal.models import Export, ExportPost, OutgoingMessage, Post, Publication, User
from journal.publish import mail, zipbundle
from journal.services import recipients
from journal.services.owned import owned

logger = logging.getLogger(__name__)

Status = Literal["not exported", "exported", "published"]
MAX_URL_CHARS = 2048
_IN_CHUNK = 500
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


# --- status of posts -----------------------------------------------------------------------


def post_status(
    session: Session, user_id: int, post_ids: Iterable[int]
) -> dict[int, tuple[Status, list[str]]]:
    """For each post id: "not exported", "exported" or "published", and the names of the bundles holding it.

    Bundle names are oldest first. Ids that are not the user's come back as ("not exported", []).
    """
    ids = sorted(set(post_ids))
    names: dict[int, list[str]] = {pid: [] for pid in ids}
    published: set[int] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        rows = session.execute(
            select(ExportPost.post_id, Export.name)
            .join(Export, Export.id == ExportPost.export_id)
            .where(Export.user_id == user_id, ExportPost.post_id.in_(chunk))
            # No DISTINCT: PostgreSQL refuses one with ORDER BY columns outside the select list;
            # the loop below drops repeated names.
            .order_by(Export.created_at, Export.id)
        )
        for post_id, name in rows:
            if name not in names[post_id]:
                names[post_id].append(name)
        published |= set(
            session.scalars(
                select(Publication.post_id)
                .join(Post, Post.id == Publication.post_id)
                .where(Post.user_id == user_id, Publication.post_id.in_(chunk))
            )
        )
    return {pid: (_status(pid in published, bool(names[pid])), names[pid]) for pid in ids}


def _status(published: bool, exported: bool) -> Status:
    if published:
        return "published"
    return "exported" if exported else "not exported"


# --- bundles -------------------------------------------------------------------------------


def get_export(session: Session, user_id: int, export_id: int) -> Export:
    """The user's bundle record; NotFound for a missing id or somebody else's bundle."""
    return owned(session, Export, export_id, user_id, "bundle")


def find_export_by_file(session: Session, user_id: int, path: Path) -> Export:
    """The record of a bundle file (zip or .eml), found by its SHA-256; a zip's manifest is checked first."""
    if not path.is_file():
        raise NotFound(f"no such file: {path.name}")
    if zipfile.is_zipfile(path):
        zipbundle.read_manifest(path)  # InvalidInput for a zip that is not a journal bundle
    sha256 = storage.sha256_file(path)
    export = session.scalar(
        select(Export).where(Export.user_id == user_id, Export.sha256 == sha256).order_by(Export.id.desc())
    )
    if export is None:
        raise NotFound(
            f"{path.name} is not a bundle this journal exported for you (no record with its SHA-256)"
        )
    return export


def check_url(url: str | None) -> str | None:
    """An http(s) URL where posts were published, or None when empty; InvalidInput otherwise."""
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or _CONTROL.search(url):
        raise InvalidInput("the URL must start with http:// or https:// and hold no spaces")
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"the URL is longer than {MAX_URL_CHARS} characters")
    return url


def mark_published(
    session: Session, export: Export, *, url: str | None = None, when: datetime | None = None
) -> int:
    """Record that the bundle's posts were published; returns how many posts. Flushes.

    Marking the same bundle again keeps the first date and sets the URL when one is given.
    """
    url = check_url(url)
    moment = when or datetime.now(UTC)
    post_ids = sorted({link.post_id for link in export.posts})
    existing = {
        pub.post_id: pub
        for pub in session.scalars(select(Publication).where(Publication.export_id == export.id))
    }
    for post_id in post_ids:
        publication = existing.get(post_id)
        if publication is None:
            session.add(Publication(post_id=post_id, export_id=export.id, published_at=moment, url=url))
        elif url:
            publication.url = url
    session.flush()
    logger.info("bundle %d marked published (%d posts)", export.id, len(post_ids))
    return len(post_ids)


@dataclass(frozen=True)
class BundleRow:
    """One bundle for the export page: its record, post count, status and whether its file is still there."""

    export: Export
    posts: int
    status: str
    detail: str | None
    url: str | None
    on_disk: bool
    #: For an e-mail bundle: the one address it goes to (None: `journal send --to` decides).
    to: str | None = None


def list_bundles(session: Session, user_id: int, *, limit: int = 200) -> list[BundleRow]:
    """The user's bundles, newest first, with what became of them."""
    exports = list(
        session.scalars(
            select(Export)
            .where(Export.user_id == user_id)
            .order_by(Export.created_at.desc(), Export.id.desc())
            .limit(limit)
        )
    )
    ids = [e.id for e in exports]
    counts = {
        export_id: count
        for export_id, count in session.execute(
            select(ExportPost.export_id, func.count(func.distinct(ExportPost.post_id)))
            .where(ExportPost.export_id.in_(ids))
            .group_by(ExportPost.export_id)
        )
    }
    urls: dict[int, str | None] = {}
    for export_id, url in session.execute(
        select(Publication.export_id, Publication.url).where(Publication.export_id.in_(ids))
    ):
        if export_id is not None:
            urls[export_id] = urls.get(export_id) or url
    messages = {
        m.export_id: m
        for m in session.scalars(select(OutgoingMessage).where(OutgoingMessage.export_id.in_(ids)))
    }
    return [
        _bundle_row(e, counts.get(e.id, 0), e.id in urls, urls.get(e.id), messages.get(e.id)) for e in exports
    ]


def _bundle_row(
    export: Export, posts: int, published: bool, url: str | None, message: OutgoingMessage | None
) -> BundleRow:
    """Status words: published; for e-mail sent, failed or pending; else exported."""
    detail: str | None = None
    if published:
        status = "published"
    elif message is None:
        status = "exported"
    elif message.sent_at is not None:
        status = "sent"
    elif message.last_error:
        status, detail = "failed", message.last_error
    else:
        status = "pending"
    to = message.to if message is not None else None
    return BundleRow(export, posts, status, detail, url, Path(export.path).is_file(), to)


# --- deleting bundles ---------------------------------------------------------------------


@dataclass(frozen=True)
class RemovedBundle:
    """A bundle whose record is gone: where its file was written, and what it held when written."""

    id: int
    name: str
    path: Path
    sha256: str
    bytes: int


def delete_bundles(session: Session, user_id: int | None, export_ids: Sequence[int]) -> list[RemovedBundle]:
    """Delete the records of these bundles (the user's; anybody's when user_id is None); flushes.

    NotFound ("no bundle ID") for any id that is not the user's, and then nothing is deleted.
    What goes with a record: its post links (so its posts count as "not exported" again for that
    platform unless another bundle holds them) and its pending e-mail (never sent now); the
    publications of its posts stay, without the bundle. The files are removed after the commit,
    by remove_bundle_files (rows before files: a crash leaves an unrecorded file, not a dangling row).
    """
    exports = []
    for export_id in dict.fromkeys(export_ids):
        export = session.get(Export, export_id)
        if export is None or (user_id is not None and export.user_id != user_id):
            raise NotFound(f"no bundle {export_id}")
        exports.append(export)
    removed = [RemovedBundle(e.id, e.name, Path(e.path), e.sha256, e.bytes) for e in exports]
    ids = [e.id for e in exports]
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        session.execute(update(Publication).where(Publication.export_id.in_(chunk)).values(export_id=None))
        session.execute(delete(OutgoingMessage).where(OutgoingMessage.export_id.in_(chunk)))
    for export in exports:
        session.delete(export)
    session.flush()
    for item in removed:
        logger.info("bundle %d (%s) deleted", item.id, item.name)
    return removed


def remove_bundle_files(removed: Sequence[RemovedBundle]) -> list[str]:
    """Delete the files of deleted bundles; one that is no longer the bundle written is left and reported."""
    problems = []
    for item in removed:
        try:
            if item.path.stat().st_size != item.bytes or storage.sha256_file(item.path) != item.sha256:
                problems.append(
                    f"{item.name}: {item.path} is not the bundle that was written any more; left in place"
                )
                continue
            item.path.unlink()
        except FileNotFoundError:
            continue  # already gone: nothing to free
        except OSError as exc:
            problems.append(f"{item.name}: cannot remove {item.path}: {exc}")
    return problems


def prunable_bundles(
    session: Session,
    user_id: int | None,
    *,
    older_than_days: float | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Ids of the bundles `journal bundles prune` removes: published ones, and (given days) older ones."""
    published = select(Publication.export_id).where(Publication.export_id.is_not(None))
    condition: ColumnElement[bool] = Export.id.in_(published)
    if older_than_days is not None:
        if not math.isfinite(older_than_days) or older_than_days < 0:
            raise InvalidInput("--older-than takes a number of days (0 or more)")
        cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
        condition = or_(condition, Export.created_at < cutoff)
    stmt = select(Export.id).where(condition).order_by(Export.created_at, Export.id)
    if user_id is not None:
        stmt = stmt.where(Export.user_id == user_id)
    return list(session.scalars(stmt))


def bundle_table(session: Session, user_id: int | None) -> list[tuple[Export, datetime | None]]:
    """Bundles oldest first (the user's, or everyone's), each with when its posts were first published."""
    first = (
        select(Publication.export_id, func.min(Publication.published_at).label("at"))
        .where(Publication.export_id.is_not(None))
        .group_by(Publication.export_id)
        .subquery()
    )
    stmt = (
        select(Export, first.c.at)
        .outerjoin(first, first.c.export_id == Export.id)
        .order_by(Export.created_at, Export.id)
    )
    if user_id is not None:
        stmt = stmt.where(Export.user_id == user_id)
    return [(export, _aware(at)) for export, at in session.execute(stmt)]


def _aware(moment: datetime | None) -> datetime | None:
    """A time read through an aggregate comes back naive (UTC as stored)."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


# --- sending e-mail bundles ------------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
    """A pending message as read from the database, with the account it belongs to."""

    message_id: str
    path: Path
    user_name: str = ""
    is_owner: bool = True


@dataclass
class SendOutcome:
    """mail.SendReport plus the file name of each message, for the report."""

    report: mail.SendReport
    names: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every pending message went out."""
        return self.report.ok

    def name(self, message_id: str) -> str:
        """The message's file name (its Message-ID when unknown)."""
        return self.names.get(message_id, message_id)


def pending_messages(session: Session, user_id: int | None) -> list[_Pending]:
    """Messages not sent yet (all users' when user_id is None), oldest first."""
    stmt = (
        select(OutgoingMessage.message_id, OutgoingMessage.path, User.name, User.is_owner)
        .join(Export, Export.id == OutgoingMessage.export_id)
        .join(User, User.id == Export.user_id)
        .where(OutgoingMessage.sent_at.is_(None))
        .order_by(OutgoingMessage.id)
    )
    if user_id is not None:
        stmt = stmt.where(Export.user_id == user_id)
    return [
        _Pending(message_id, Path(path), name, bool(is_owner))
        for message_id, path, name, is_owner in session.execute(stmt)
    ]


def run_send_pending(
    factory: sessionmaker[Session],
    smtp_url: str,
    *,
    user_id: int | None,
    to: str | None = None,
    settings: Settings | None = None,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    tls_context: ssl.SSLContext | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendOutcome:
    """Send every pending e-mail bundle once; each one sent is committed as sent right away.

    A job, like run_export: it takes the session factory, as `mark_sent` must commit per message,
    so a re-run (or a run after a crash) skips what went out before. `to` (one address, the operator's
    choice) replaces the To header; without it each message goes to its own To address, only when
    that account may use it (journal.services.recipients; `settings` holds the owner's list).
    """
    mail.parse_smtp_url(smtp_url)  # a bad URL fails before anything is read
    to = mail.parse_recipient(to) if to else None
    allowed = recipients.policy(settings) if settings is not None else mail.RecipientPolicy()
    with factory() as session:
        pending = pending_messages(session, user_id)
    outcome = SendOutcome(mail.SendReport(), {p.message_id: p.path.name for p in pending})
    unreadable: list[tuple[str, str]] = []
    report = mail.send_messages(
        smtp_url,
        _read_messages(pending, to, unreadable, allowed),
        already_sent=lambda message_id: _is_sent(factory, message_id),
        mark_sent=lambda message_id: _mark_sent(factory, message_id, to),
        retries=retries,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
        tls_context=tls_context,
        sleep=sleep,
    )
    report.failed = unreadable + report.failed
    _record_failures(factory, report.failed)
    outcome.report = report
    return outcome


def _read_messages(
    pending: Sequence[_Pending],
    to: str | None,
    unreadable: list[tuple[str, str]],
    allowed: mail.RecipientPolicy,
) -> Iterator[mail.PendingMessage]:
    """Each pending message read from its file (one at a time); files that cannot be used go to unreadable.

    A message whose recipient its account may not use is never handed to the SMTP client.
    """
    for item in pending:
        try:
            message = mail.pending_from_eml(item.path, to=to)
        except OSError as exc:
            unreadable.append((item.message_id, f"cannot read {item.path.name}: {exc}"))
            continue
        except JournalError as exc:
            unreadable.append((item.message_id, f"not sent: {exc}"))
            continue
        if message.message_id != item.message_id:
            unreadable.append((item.message_id, f"{item.path.name} holds another Message-ID than its record"))
            continue
        refused = [r for r in message.recipients if not (to or item.is_owner or allowed.allows(r))]
        if refused:
            logger.warning(
                "not sending %s of %s to %s: not allowed", item.path.name, item.user_name, refused[0]
            )
            unreadable.append(
                (
                    item.message_id,
                    f"recipient {refused[0]} is not allowed for account {item.user_name}"
                    " (JOURNAL_MAIL_ALLOWED_RECIPIENTS)",
                )
            )
            continue
        yield message


def _is_sent(factory: sessionmaker[Session], message_id: str) -> bool:
    """Whether the message is recorded as sent (read fresh, right before sending it)."""
    with factory() as session:
        sent_at = session.scalar(
            select(OutgoingMessage.sent_at).where(OutgoingMessage.message_id == message_id)
        )
    return sent_at is not None


def _mark_sent(factory: sessionmaker[Session], message_id: str, to: str | None) -> None:
    """Record one message as sent, in its own transaction (committed before the next is sent)."""
    with factory() as session, session.begin():
        message = session.scalar(select(OutgoingMessage).where(OutgoingMessage.message_id == message_id))
        if message is None:
            raise NotFound(f"message {message_id} has no record")
        message.sent_at = datetime.now(UTC)
        message.attempts += 1
        message.last_error = None
        if to:
            message.to = to


def _record_failures(factory: sessionmaker[Session], failed: Sequence[tuple[str, str]]) -> None:
    """Keep each failed message's reason (and count the attempt) for the next run and the web page."""
    if not failed:
        return
    with factory() as session, session.begin():
        for message_id, reason in failed:
            message = session.scalar(select(OutgoingMessage).where(OutgoingMessage.message_id == message_id))
            if message is not None and message.sent_at is None:
                message.attempts += 1
                message.last_error = reason[:1024]
