"""The export page: run an export (in the background, progress polled by export.js), past bundles, zones.

Jobs live in memory, per process, each owned by the user who started it. A user runs one export
at a time on every path (exporting.ExportLock, shared with other processes and the CLI): without
JavaScript the form posts normally and the export runs inside the request, holding the same lock.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import MultiDict

from journal import ids
from journal.config import Settings
from journal.errors import Conflict, InvalidInput, JournalError, NotFound, QuotaExceeded
from journal.models import Trip
from journal.publish.location import check_location_mode
from journal.publish.platforms import PLATFORMS, Platform
from journal.services import exporting, publishing, quota, recipients, zones
from journal.web.context import error_status, get_db, get_settings, session_factory

logger = logging.getLogger(__name__)

bp = Blueprint("export", __name__)

JOBS_KEY = "journal.export_jobs"
#: Finished jobs are forgotten after this long.
JOB_TTL_S = 3600.0
LOCATION_CHOICES = (
    ("exact", "Exact", "Positions as recorded, in the files and on the map."),
    ("approx", "Approximate", "About 5 km (a town centre or a coarse grid); no GPS inside the files."),
    ("none", "None", "No position anywhere; the place is the country only."),
)
FORMAT_CHOICES = (
    ("zip", "Zip bundle", "Photos, an offline journal page and a map, one zip per batch."),
    ("eml", "E-mail", "One ready-to-send message per batch, sent later by journal send."),
)
#: Errors a form shows next to itself (anything else goes to the error page).
FORM_ERRORS = (InvalidInput, Conflict, QuotaExceeded)


# --- background jobs -----------------------------------------------------------------------


@dataclass
class Job:
    """One export running (or finished) in a background thread."""

    id: str
    user_id: int
    state: Literal["running", "done", "failed"] = "running"
    phase: str = "Starting"
    done: int = 0
    total: int = 0
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    posts: int = 0
    error: str | None = None
    finished_at: float | None = None

    def progress(self, update: exporting.Progress) -> None:
        """exporting's progress callback."""
        self.phase, self.done, self.total = update.phase, update.done, update.total

    def add_bundle(self, written: exporting.WrittenBundle) -> None:
        """exporting's bundle callback."""
        self.files.append(written.path.name)

    def finish(self, outcome: exporting.ExportOutcome) -> None:
        """Mark the job done."""
        self.problems, self.posts = list(outcome.problems), outcome.posts
        self.state, self.finished_at = "done", time.monotonic()

    def fail(self, message: str) -> None:
        """Mark the job failed."""
        self.error, self.state, self.finished_at = message, "failed", time.monotonic()

    def as_json(self) -> dict[str, Any]:
        """What the status endpoint answers."""
        percent = 100 if self.state != "running" else (100 * self.done // self.total if self.total else 0)
        return {
            "id": self.id,
            "state": self.state,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "percent": percent,
            "files": self.files,
            "problems": self.problems,
            "error": self.error,
        }


class Jobs:
    """The export jobs of this process, by id; each is visible to its owner only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start(self, user_id: int, work: Callable[[Job], None]) -> Job:
        """Run work(job) in a daemon thread; Conflict when the user already has a job running."""
        with self._lock:
            self._prune()
            if any(j.user_id == user_id and j.state == "running" for j in self._jobs.values()):
                raise Conflict("an export is already running; wait for it to finish")
            job = Job(secrets.token_urlsafe(12), user_id)
            self._jobs[job.id] = job
        threading.Thread(target=work, args=(job,), name=f"export-{job.id}", daemon=True).start()
        return job

    def get(self, user_id: int, job_id: str) -> Job:
        """The user's job; NotFound for an unknown id or somebody else's job."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.user_id != user_id:
            raise NotFound("no such export job")
        return job

    def running(self, user_id: int) -> Job | None:
        """The user's running job, if any."""
        with self._lock:
            return next(
                (j for j in self._jobs.values() if j.user_id == user_id and j.state == "running"), None
            )

    def _prune(self) -> None:
        """Forget jobs that finished long ago (the caller holds the lock)."""
        now = time.monotonic()
        for job_id in [k for k, j in self._jobs.items() if j.finished_at and now - j.finished_at > JOB_TTL_S]:
            del self._jobs[job_id]


def jobs() -> Jobs:
    """The app's job registry."""
    registry: Jobs = current_app.extensions[JOBS_KEY]
    return registry


def run_job(
    job: Job,
    factory: sessionmaker[Session],
    settings: Settings,
    req: exporting.ExportRequest,
    lock: exporting.ExportLock,
) -> None:
    """The thread's body: run the export (its request took the account's lock) and file the outcome."""
    try:
        outcome = exporting.run_export(
            factory, settings, req, on_progress=job.progress, on_bundle=job.add_bundle, lock=lock
        )
    except JournalError as exc:
        job.fail(str(exc))
    except Exception:  # the thread must end with a state the page can show; the details go to the log
        logger.exception("export job %s failed", job.id)
        job.fail("the export failed unexpectedly; the server log has the details")
    else:
        job.finish(outcome)
    finally:
        lock.release()


# --- forms ---------------------------------------------------------------------------------


def platform_summary(platform: Platform) -> str:
    """One line on what a preset does, for the form."""
    if platform.format == "original":
        return "Full-size originals, metadata removed (lossless for JPEG)."
    parts = [f"{platform.width} px wide" if platform.width else f"up to {platform.long_edge} px"]
    if platform.max_images:
        parts.append(f"{platform.max_images} photos per post")
    if platform.max_file_bytes:
        parts.append(f"{platform.max_file_bytes / 1_000_000:g} MB per photo")
    if platform.caption_limit:
        parts.append(f"{platform.caption_limit:,} characters")
    return ", ".join(parts) + "."


def parse_export_form(form: MultiDict[str, str], user_id: int) -> exporting.ExportRequest:
    """An ExportRequest from the form's fields; InvalidInput names what is wrong."""
    size = form.get("max_batch_mb", "").strip().replace(",", ".")
    try:
        max_mb = float(size) if size else None
    except ValueError:
        raise InvalidInput("the batch size is not a number") from None
    return exporting.ExportRequest(
        user_id=user_id,
        platform=form.get("platform", "original"),
        location=check_location_mode(form.get("location", "exact")),
        format=_export_format(form.get("format", "zip")),
        trip_id=ids.parse_id(form.get("trip"), "trip"),
        include_exported=form.get("all") == "1",
        max_batch_bytes=exporting.megabytes(max_mb),
        mail_to=form.get("to", "").strip() or None,
    )


def _export_format(value: str) -> exporting.ExportFormat:
    """zip or eml; InvalidInput otherwise."""
    if value == "eml":
        return "eml"
    if value == "zip":
        return "zip"
    raise InvalidInput(f"unknown format {value!r}")


def _user_trips(session: Session, user_id: int) -> list[Trip]:
    return list(session.scalars(select(Trip).where(Trip.user_id == user_id).order_by(Trip.title)))


def render_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    """The export page (also shown again, with the error, when a form was refused)."""
    session, user_id = get_db(), current_user.id
    job = None
    if request.args.get("job"):
        try:
            job = jobs().get(user_id, request.args["job"])
        except NotFound:
            job = None
    page = render_template(
        "export/page.html",
        trips=_user_trips(session, user_id),
        platforms=[(p.name, platform_summary(p)) for p in PLATFORMS.values()],
        locations=LOCATION_CHOICES,
        formats=FORMAT_CHOICES,
        bundles=publishing.list_bundles(session, user_id),
        recipients=recipients.allowed_text(get_settings(), is_owner=bool(current_user.is_owner)),
        is_owner=bool(current_user.is_owner),
        storage_used=quota.usage(session, get_settings(), user_id).text(),
        zones=zones.list_zones(session, user_id),
        job=job,
        running=jobs().running(user_id),
        form=request.form,
        error=error,
    )
    return page, status


def _form_error(exc: JournalError) -> tuple[Any, int]:
    """A refused form: JSON for export.js, else the page again with the message."""
    get_db().rollback()
    status = error_status(exc)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=str(exc)), status
    return render_page(str(exc), status)


# --- views ---------------------------------------------------------------------------------


@bp.get("/export")
def index() -> Any:
    """The export form, the bundles made so far, and the privacy zones."""
    return render_page()


@bp.post("/export")
def start() -> Any:
    """Run an export: in the background for export.js (202 + job URL), else right away (303 back)."""
    try:
        req = parse_export_form(request.form, current_user.id)
        factory, settings = session_factory(), get_settings()
        exporting.check_request(get_db(), settings, req)
        if jobs().running(current_user.id):
            raise Conflict("an export is already running; wait for it to finish")
        if request.accept_mimetypes.best == "application/json":
            job = _start_job(factory, settings, req)
            status_url = url_for(".job_status", job_id=job.id)
            return jsonify(job=job.id, status_url=status_url, page_url=url_for(".index", job=job.id)), 202
        outcome = exporting.run_export(factory, settings, req)
    except FORM_ERRORS as exc:
        return _form_error(exc)
    flash(_summary(outcome))
    return redirect(url_for(".index"), 303)


def _start_job(factory: sessionmaker[Session], settings: Settings, req: exporting.ExportRequest) -> Job:
    """Take the account's export lock here (a refusal is this request's 409), then run in a thread."""
    lock = exporting.export_lock(settings, req.user_id).acquire()
    try:
        return jobs().start(req.user_id, lambda job: run_job(job, factory, settings, req, lock))
    except BaseException:
        lock.release()
        raise


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(outcome: exporting.ExportOutcome) -> str:
    """One line on what an export did."""
    if not outcome.posts:
        return "Nothing to export: every post is in a bundle for this platform already."
    text = f"Exported {_plural(outcome.posts, 'post')} in {_plural(len(outcome.bundles), 'bundle')}."
    if outcome.problems:
        text += f" {len(outcome.problems)} left out: " + "; ".join(outcome.problems[:5])
    return text


@bp.get("/export/jobs/<job_id>")
def job_status(job_id: str) -> Any:
    """A running export's progress as JSON (404 for anybody else's job)."""
    return jsonify(jobs().get(current_user.id, job_id).as_json())


@bp.get("/export/bundles/<int:export_id>/download")
def download(export_id: int) -> Any:
    """A bundle's file, to its owner only, as an attachment."""
    export = publishing.get_export(get_db(), current_user.id, export_id)
    path = Path(export.path)
    if not path.is_file():
        raise NotFound("this bundle's file is no longer on disk")
    mimetype = "application/zip" if export.format == "zip" else "message/rfc822"
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=export.name, max_age=0)


@bp.post("/export/bundles/<int:export_id>/published")
def mark_published(export_id: int) -> Any:
    """Record that a bundle's posts were published (optionally where)."""
    session = get_db()
    export = publishing.get_export(session, current_user.id, export_id)
    try:
        count = publishing.mark_published(session, export, url=request.form.get("url"))
    except FORM_ERRORS as exc:
        return _form_error(exc)
    session.commit()
    flash(f"Marked {count} post{'' if count == 1 else 's'} of {export.name} as published.")
    return redirect(url_for(".index"), 303)


@bp.post("/export/bundles/<int:export_id>/delete")
def delete_bundle(export_id: int) -> Any:
    """Delete one of the user's bundles: its record, then its file (404 for anybody else's)."""
    session = get_db()
    removed = publishing.delete_bundles(session, current_user.id, [export_id])
    session.commit()
    problems = publishing.remove_bundle_files(removed)
    flash(f"Deleted {removed[0].name}." + (f" {problems[0]}" if problems else ""))
    return redirect(url_for(".index", _anchor="bundles"), 303)


@bp.post("/export/zones")
def add_zone() -> Any:
    """Add a privacy zone: no position inside it is ever exported."""
    session = get_db()
    form = request.form
    try:
        zone = zones.ZoneInput.parse(
            form.get("label", ""), form.get("lat", ""), form.get("lon", ""), form.get("radius_m", "")
        )
        zones.add_zone(session, current_user.id, zone)
    except FORM_ERRORS as exc:
        return _form_error(exc)
    session.commit()
    flash("Privacy zone added: exports never show a position inside it.")
    return redirect(url_for(".index", _anchor="zones"), 303)


@bp.post("/export/zones/<int:zone_id>/delete")
def delete_zone(zone_id: int) -> Any:
    """Remove one of the user's privacy zones."""
    session = get_db()
    zones.delete_zone(session, current_user.id, zone_id)
    session.commit()
    flash("Privacy zone removed.")
    return redirect(url_for(".index", _anchor="zones"), 303)
