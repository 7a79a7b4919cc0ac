"""Settings: where the data lives and the limits that apply to it. Standard library only."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Pixel limit above which an image is refused before decoding (decompression bombs).
#: 200 MP leaves room for 150 MP medium-format cameras and panoramas.
DEFAULT_MAX_PIXELS = 200_000_000
DEFAULT_MAX_UPLOAD_BYTES = 200_000_000
#: File parts one upload request may carry (the page's script sends one file per request).
DEFAULT_MAX_UPLOAD_FILES = 500


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?:in)?)?(?:(\d+)s(?:ec)?)?$")


def duration_s(text: str) -> int:
    """ "45m", "90s", "1h30m", "2h", "0:10" (H:MM) or plain seconds -> seconds; ValueError otherwise."""
    value = text.strip().lower().replace(" ", "")
    clock = re.fullmatch(r"(\d{1,3}):([0-5]\d)", value)
    if clock:
        return int(clock.group(1)) * 3600 + int(clock.group(2)) * 60
    if value.isdigit():
        return int(value)
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (such as 5m, 45m, 1h30m, 90s)")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


#: Data home files are private to the user running the journal unless JOURNAL_FILE_MODE shares them.
DEFAULT_FILE_MODE = 0o600

#: GPX files: largest file, most points, and CPU seconds the worker reading one may use.
DEFAULT_GPX_MAX_BYTES = 50_000_000
DEFAULT_GPX_MAX_POINTS = 1_000_000
DEFAULT_GPX_CPU_S = 2.0


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one data home."""

    home: Path
    database_url: str = ""
    thumb_size: int = 400
    web_size: int = 2048
    #: The web image may be this much smaller than web_size when that lets a JPEG decode at
    #: 1/2, 1/4 or 1/8 scale (4000x3000 -> 2000x1500 instead of a full decode and resample: ~3x faster).
    web_size_tolerance: float = 0.03
    jpeg_quality: int = 85
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_upload_files: int = DEFAULT_MAX_UPLOAD_FILES
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Longest time (seconds) between two track points that a photo between them is placed across
    #: (ExifTool's GeoMaxIntSecs).
    track_max_gap_s: int = 300
    #: A photo up to this long (seconds) before a track, after it or beside a longer gap takes the
    #: nearest point's position (ExifTool's GeoMaxExtSecs); 0, the default, turns the rule off.
    track_nearest_s: int = 0
    #: GPX files larger than this, or with more points, are refused; reading one may take this much CPU.
    gpx_max_bytes: int = DEFAULT_GPX_MAX_BYTES
    gpx_max_points: int = DEFAULT_GPX_MAX_POINTS
    gpx_cpu_s: float = DEFAULT_GPX_CPU_S
    #: Optional online tile URL template, off by default: the map never needs it.
    online_tiles_url: str = ""
    #: Reverse proxies in front of the app to trust for X-Forwarded-For/-Proto (0: none).
    proxy_fix: int = 0
    #: Mark the session cookie Secure even on plain-HTTP requests (it is Secure on HTTPS anyway).
    cookie_secure: bool = False
    #: Host names the app answers on (besides IP literals and localhost); empty: any name, except
    #: that /setup answers only on an IP literal or localhost (no claiming through DNS rebinding).
    trusted_hosts: tuple[str, ...] = ()
    #: Where other accounts' e-mail may go: addresses and "@domain" entries (the owner's goes anywhere).
    mail_allowed_recipients: tuple[str, ...] = ()
    #: Storage per account (originals, renditions, bundles) in bytes; 0 means no quota.
    quota_bytes: int = 0
    #: Mode of the files the journal writes (originals, renditions, bundles, the database); folders
    #: get the same bits plus x where r is set (0600 -> 0700, 0640 -> 0750).
    file_mode: int = DEFAULT_FILE_MODE

    def __post_init__(self) -> None:
        if self.thumb_size <= 0 or self.web_size < self.thumb_size:
            raise ValueError("rendition sizes must be positive and web >= thumb")
        if not 0 <= self.web_size_tolerance < 0.5:
            raise ValueError("web_size_tolerance must be in [0, 0.5)")
        if not (0 <= self.track_max_gap_s <= 86_400 and 0 <= self.track_nearest_s <= 86_400):
            raise ValueError("track gaps must be between 0 and one day")
        if min(self.max_pixels, self.max_upload_bytes, self.max_upload_files, self.workers) <= 0:
            raise ValueError("limits must be positive")
        if not 0 <= self.proxy_fix <= 5:
            raise ValueError("proxy_fix is the number of trusted proxies, 0 to 5")
        if self.quota_bytes < 0:
            raise ValueError("the quota must not be negative (0: no quota)")
        if self.file_mode & ~0o666 or self.file_mode & 0o600 != 0o600:
            raise ValueError("file_mode must give the owner rw- and nobody x (such as 0600, 0640, 0660)")
        if self.gpx_max_bytes <= 0 or self.gpx_max_points <= 0 or not self.gpx_cpu_s > 0:
            raise ValueError("GPX limits must be positive")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'journal.db'}")

    @property
    def dir_mode(self) -> int:
        """Mode of the folders the journal makes: file_mode with x wherever r is set."""
        return self.file_mode | (self.file_mode & 0o444) >> 2

    @property
    def uploads_dir(self) -> Path:
        """Originals and renditions."""
        return self.home / "uploads"

    @property
    def exports_dir(self) -> Path:
        """Default folder for post bundles."""
        return self.home / "exports"

    @property
    def staging_dir(self) -> Path:
        """Temp files live here (same file system as uploads/) until renamed into place."""
        return self.home / ".staging"

    @property
    def tiles_dir(self) -> Path:
        """Registered offline tile sets."""
        return self.home / "tiles"

    @property
    def secret_key_path(self) -> Path:
        """The web app's secret key, created on first start with mode 0600."""
        return self.home / "secret_key"

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded default database."""
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, home: Path | None = None, **overrides: object) -> Settings:
        """Build settings from --home / JOURNAL_* environment variables; default home is the cwd."""
        env = os.environ
        if home is None:
            home = Path(env.get("JOURNAL_HOME") or ".")
        values: dict[str, object] = {"home": home.expanduser().resolve()}
        if env.get("JOURNAL_DATABASE_URL"):
            values["database_url"] = env["JOURNAL_DATABASE_URL"]
        for name, key in (
            ("max_upload_bytes", "JOURNAL_MAX_UPLOAD_MB"),
            ("max_upload_files", "JOURNAL_MAX_UPLOAD_FILES"),
            ("max_pixels", "JOURNAL_MAX_PIXELS"),
            ("workers", "JOURNAL_WORKERS"),
            ("gpx_max_bytes", "JOURNAL_GPX_MAX_MB"),
            ("gpx_max_points", "JOURNAL_GPX_MAX_POINTS"),
        ):
            if env.get(key):
                number = int(env[key])
                values[name] = number * 1_000_000 if key.endswith("_MB") else number
        for name, key in (
            ("track_max_gap_s", "JOURNAL_TRACK_MAX_GAP"),
            ("track_nearest_s", "JOURNAL_TRACK_NEAREST"),
        ):
            if env.get(key):
                values[name] = duration_s(env[key])
        if env.get("JOURNAL_MAIL_ALLOWED_RECIPIENTS"):
            entries = env["JOURNAL_MAIL_ALLOWED_RECIPIENTS"].replace(",", " ").split()
            values["mail_allowed_recipients"] = tuple(entries)
        if env.get("JOURNAL_QUOTA_MB"):
            quota_mb = float(env["JOURNAL_QUOTA_MB"])
            if not math.isfinite(quota_mb):
                raise ValueError("JOURNAL_QUOTA_MB must be a number of megabytes")
            values["quota_bytes"] = round(quota_mb * 1_000_000)
        if env.get("JOURNAL_GPX_CPU_S"):
            values["gpx_cpu_s"] = float(env["JOURNAL_GPX_CPU_S"])
        if env.get("JOURNAL_ONLINE_TILES_URL"):
            values["online_tiles_url"] = env["JOURNAL_ONLINE_TILES_URL"]
        if env.get("JOURNAL_PROXY_FIX"):
            values["proxy_fix"] = int(env["JOURNAL_PROXY_FIX"])
        if env.get("JOURNAL_COOKIE_SECURE"):
            values["cookie_secure"] = env["JOURNAL_COOKIE_SECURE"].strip().lower() in (
                "1",
                "true",
                "yes",
                "on",
            )
        if env.get("JOURNAL_TRUSTED_HOSTS"):
            names = (name.strip().lower() for name in env["JOURNAL_TRUSTED_HOSTS"].split(","))
            values["trusted_hosts"] = tuple(name for name in names if name)
        if env.get("JOURNAL_FILE_MODE"):
            values["file_mode"] = int(env["JOURNAL_FILE_MODE"], 8)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
