"""E-mail bundles: the message a batch becomes, its attachments checked, and batches planned under a size."""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from journal.errors import PrivacyLeak
from journal.publish.emailbundle import PRIVACY_NOTE, build_bundle, email_subject, plan_bundles
from journal.publish.scrub import ExifKeep, build_exif
from journal.publish.zipbundle import Batch, BundleFile, BundlePost, photo_entry_name
from tests.test_zipbundle import CREATED, make_jpeg


def post(post_id: int, files: tuple[BundleFile, ...], caption: str = "A walk") -> BundlePost:
    return BundlePost(
        id=post_id,
        caption=caption,
        caption_cut=False,
        taken_at_utc="2024-05-01T18:00:00Z",
        taken_at_local="2024-05-01T20:00:00",
        place="Lyon",
        location=None,
        files=files,
    )


def read_message(path: Path) -> email.message.EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_a_batch_becomes_one_message_with_its_photos_and_privacy_json(tmp_path: Path) -> None:
    photo = make_jpeg(tmp_path / "a.jpg")
    posts = [post(7, (BundleFile(photo_entry_name(7, 1), photo, 120, 80),))]
    dest = tmp_path / "out.eml"
    info = build_bundle(
        dest,
        Batch(posts, 1, 1, CREATED, "Summer", location="approx"),
        sender="me@example.org",
        to="you@example.org",
    )
    data = dest.read_bytes()
    assert (info.path, info.bytes, info.sha256) == (dest, len(data), hashlib.sha256(data).hexdigest())
    message = read_message(dest)
    assert message["Message-ID"] == info.message_id and message["To"] == "you@example.org"
    assert message["Subject"] == email_subject(posts, title="Summer", batch=1, batches=1) == "A walk"
    assert email.utils.parsedate_to_datetime(message["Date"]) == datetime.fromisoformat(CREATED)
    body = message.get_body(("plain",))
    assert body is not None and PRIVACY_NOTE in body.get_content() and "7-1.jpg" in body.get_content()
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert attachments["7-1.jpg"] == photo.read_bytes()
    report = json.loads(attachments["privacy.json"])
    assert report == info.privacy and report["location"] == "approx"
    assert [entry["path"] for entry in report["files"]] == ["7-1.jpg"]


def test_a_leaking_photo_stops_the_message_before_it_is_written(tmp_path: Path) -> None:
    photo = make_jpeg(tmp_path / "a.jpg")
    located = tmp_path / "gps.jpg"
    with Image.open(photo) as image:
        image.save(located, "JPEG", exif=build_exif(ExifKeep(position=(1.0, 2.0))))
    dest = tmp_path / "out.eml"
    with pytest.raises(PrivacyLeak):
        build_bundle(
            dest,
            Batch(
                [post(7, (BundleFile(photo_entry_name(7, 1), located, 120, 80),))], 1, 1, CREATED, "Summer"
            ),
            sender="me@example.org",
        )
    assert not dest.exists()


def test_a_streamed_file_is_refused(tmp_path: Path) -> None:
    streamed = BundleFile(photo_entry_name(7, 1), lambda sink: None, 120, 80, size_hint=10)
    with pytest.raises(AssertionError, match="never streamed"):
        build_bundle(
            tmp_path / "out.eml",
            Batch([post(7, (streamed,))], 1, 1, CREATED, "Summer"),
            sender="me@example.org",
        )


def test_planned_batches_keep_groups_whole_and_their_messages_fit(tmp_path: Path) -> None:
    photos = [make_jpeg(tmp_path / f"{i}.jpg", seed=i) for i in range(5)]
    groups = [
        [post(i, (BundleFile(photo_entry_name(i, 1), photos[i], 120, 80),), caption=f"Post {i}")]
        for i in range(4)
    ]
    parts = [post(9, (BundleFile(photo_entry_name(9, n), photos[4], 120, 80),)) for n in (1, 2)]
    groups.append(parts)
    limit = 60_000
    batches = plan_bundles(groups, limit, title="Summer")
    assert len(batches) > 1 and [p for batch in batches for p in batch] == [p for g in groups for p in g]
    assert any(parts[0] in batch and parts[1] in batch for batch in batches)
    for number, batch in enumerate(batches, start=1):
        info = build_bundle(
            tmp_path / f"{number}.eml",
            Batch(batch, number, len(batches), CREATED, "Summer"),
            sender="me@example.org",
        )
        assert info.bytes <= limit
    assert plan_bundles(groups, None, title="Summer") == [[p for g in groups for p in g]]
