"""One post bundle as an e-mail: a MIME message with the photos and privacy.json attached, written atomically.

The counterpart of zipbundle.py, made from the same BundlePosts: plan_bundles cuts the posts into
batches whose message stays under a size, build_bundle writes one batch. Every photo is read again
(leaks.inspect_bytes) and its findings go into the privacy.json attachment, which the body points
to; the message is then parsed back, and each attachment must be byte for byte the file that was
checked. An e-mail bundle holds made files only: a planned scrub is never streamed into a message.
"""

from __future__ import annotations

import email.message
import email.policy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from journal import clock
from journal.errors import PrivacyLeak
from journal.publish import leaks, mail
from journal.publish.batching import (
    MIME_MESSAGE_OVERHEAD,
    MIME_PART_OVERHEAD,
    eml_attachment_bytes,
    plan_batches,
)
from journal.publish.platforms import Platform, fit_caption
from journal.publish.streams import file_pieces
from journal.publish.zipbundle import EMPTY_REPORT, PRIVACY_FILE_BYTES, Batch, BundleFile, BundlePost
from journal.storage import atomic_write

_MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

#: The body's pointer to the privacy report an e-mail bundle carries as an attachment.
PRIVACY_NOTE = (
    f"The attached {leaks.FILE_NAME} says, for each photo, what was removed from it and what it kept;"
    " each one was read again after it was written."
)


@dataclass(frozen=True)
class MessageInfo:
    """A written e-mail bundle: where, its SHA-256 and size, its Message-ID and its privacy report."""

    path: Path
    sha256: str
    bytes: int
    message_id: str
    privacy: dict[str, Any] = field(default_factory=dict, repr=False)


def attachment_name(file: BundleFile) -> str:
    """An attachment's file name: the entry's last part ("12-1.jpg")."""
    return file.path_in_zip.rsplit("/", 1)[-1]


# --- writing ---


def build_bundle(
    dest: Path,
    batch: Batch,
    *,
    sender: str,
    to: str | None = None,
    staging: Path | None = None,
) -> MessageInfo:
    """Write a batch as one MIME message at dest (atomically), with a new Message-ID.

    `created_at` (ISO, UTC) is the message's Date and the privacy report's time; without `to` the
    message has no To header (`journal send --to` gives the recipient). PrivacyLeak when a photo
    carries what its rule forbids, or when an attachment is not the file that was checked:
    nothing is written then.
    """
    files = [f for post in batch.posts for f in post.files]
    checks = leaks.BundleChecks()
    for f in files:
        source = _file_bytes(f)
        pieces = file_pieces(source) if isinstance(source, Path) else [source]
        checks.files.append((attachment_name(f), leaks.inspect_bytes(pieces, hashed=True), f.rule))
    if found := checks.leaks():
        raise PrivacyLeak(f"{dest.name}: {' / '.join(found)}")
    report = leaks.report(
        batch.location,
        checks.entries(),
        batch=batch.number,
        batches=batch.batches,
        created_at=batch.created_at,
    )
    attachments: list[tuple[str, Path | bytes, str]] = [
        (
            attachment_name(f),
            _file_bytes(f),
            _MIME.get(f.path_in_zip.rsplit(".", 1)[-1], "application/octet-stream"),
        )
        for f in files
    ]
    report_json = json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8")
    attachments.append((leaks.FILE_NAME, report_json, "application/json"))
    message_id = mail.make_message_id()
    data = mail.build_eml(
        subject=email_subject(batch.posts, title=batch.title, batch=batch.number, batches=batch.batches),
        body_text=email_body(batch.posts, title=batch.title, batch=batch.number, batches=batch.batches),
        attachments=attachments,
        to=to,
        sender=sender,
        message_id=message_id,
        date=datetime.fromisoformat(batch.created_at),
    )
    _check_attachments(dest.name, data, {name: findings.sha256 for name, findings, _ in checks.files})
    with atomic_write(dest, staging=staging) as handle:
        handle.write(data)
    return MessageInfo(dest, hashlib.sha256(data).hexdigest(), len(data), message_id, privacy=report)


def _check_attachments(name: str, data: bytes, checked: dict[str, str | None]) -> None:
    """PrivacyLeak unless the message's photo attachments are exactly the bytes that were checked."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    found: dict[str, str] = {}
    for part in message.iter_attachments():
        filename = part.get_filename()
        if filename is not None and filename != leaks.FILE_NAME:
            found[filename] = hashlib.sha256(part.get_content()).hexdigest()
    if found != checked:
        raise PrivacyLeak(f"{name}: the attachments differ from the files that were checked")


def _file_bytes(file: BundleFile) -> Path | bytes:
    """An attachment's content: e-mail bundles only hold made files."""
    if callable(file.source):
        raise AssertionError("e-mail bundles are made from files, never streamed")
    return file.source


# --- the message text ---


def email_subject(posts: Sequence[BundlePost], *, title: str, batch: int, batches: int) -> str:
    """A single post's caption (first line, cut at a word), else the title with the post count."""
    ids = {post.id for post in posts}
    first_line = posts[0].caption.strip().split("\n", 1)[0] if posts else ""
    if len(ids) == 1 and first_line:
        return fit_caption(first_line, Platform("subject", caption_limit=78))[0]
    part = f" ({batch}/{batches})" if batches > 1 else ""
    return f"{title}: {len(ids)} post{'' if len(ids) == 1 else 's'}{part}"


def email_body(posts: Sequence[BundlePost], *, title: str, batch: int, batches: int) -> str:
    """The plain-text body of a batch's message."""
    return _email_head(title, batch, batches) + "".join(_email_post_text(post) for post in posts)


def _email_head(title: str, batch: int, batches: int) -> str:
    """The first lines of a message body."""
    part = f" (part {batch} of {batches})" if batches > 1 else ""
    return f"{title}{part}\n\n{PRIVACY_NOTE}\n\n"


def _email_post_text(post: BundlePost) -> str:
    """One post in the plain-text body: caption, when and where, its attachments."""
    lines = [post.caption] if post.caption else []
    facts = [_when_text(post), post.place or ""]
    if post.location is not None:
        facts.append(f"{post.location['lat']:.5f}, {post.location['lon']:.5f}")
    lines.append(" · ".join(fact for fact in facts if fact))
    lines.append("Photos: " + ", ".join(attachment_name(f) for f in post.files))
    return "\n".join(lines) + "\n\n"


def _when_text(post: BundlePost) -> str:
    """When a post was taken, for the e-mail body: local time, else UTC."""
    if post.taken_at_local:
        return clock.strftime(datetime.fromisoformat(post.taken_at_local), "%Y-%m-%d %H:%M")
    if post.taken_at_utc:
        return clock.strftime(datetime.fromisoformat(post.taken_at_utc), "%Y-%m-%d %H:%M UTC")
    return ""


# --- size estimates for batching ---


def plan_bundles(
    groups: Sequence[Sequence[BundlePost]], max_bytes: int | None, *, title: str
) -> list[list[BundlePost]]:
    """Batches whose encoded message stays under max_bytes (batching.eml_size bounds); groups stay whole."""
    # The body is sent as 7bit, quoted-printable or base64: at most twice its UTF-8 size (batching.eml_size).
    fixed = MIME_MESSAGE_OVERHEAD + MIME_PART_OVERHEAD + 2 * len(_email_head(title, 99, 99).encode()) + 16
    report = len(json.dumps(EMPTY_REPORT, indent=1)) + 64
    fixed += eml_attachment_bytes(report, leaks.FILE_NAME)

    def size_of(group: Sequence[BundlePost]) -> int:
        text = sum(2 * len(_email_post_text(post).encode()) for post in group)
        files = [f for post in group for f in post.files]
        # Each file's entry in the privacy.json attachment, base64 (4/3) with line breaks: at most double.
        privacy_bytes = 2 * PRIVACY_FILE_BYTES * len(files)
        return (
            text
            + privacy_bytes
            + sum(eml_attachment_bytes(f.size_bound(), attachment_name(f)) for f in files)
        )

    batches = plan_batches(list(groups), size_of, max_bytes, fixed_bytes=fixed)
    return [[post for group in batch for post in group] for batch in batches]
