"""Settings: where the data lives and the limits that apply to it. Standard library only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Pixel limit above which an image is refused before decoding (decompression bombs).
#: 200 MP leaves room for 150 MP medium-format cameras and panoramas.
DEFAULT_MAX_PIXELS = 200_000_000
DEFAULT_MAX_UPLOAD_BYTES = 200_000_000
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
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Largest gap (seconds) between a photo and a track point for placing it "from track".
    track_max_gap_s: int = 300
    #: GPX files larger than this, or with more points, are refused; reading one may take this much CPU.
    gpx_max_bytes: int = DEFAULT_GPX_MAX_BYTES
    gpx_max_points: int = DEFAULT_GPX_MAX_POINTS
    gpx_cpu_s: float = DEFAULT_GPX_CPU_S
    #: Optional online tile URL template, off by default: the map never needs it.
    online_tiles_url: str = ""

    def __post_init__(self) -> None:
        if self.thumb_size <= 0 or self.web_size < self.thumb_size:
            raise ValueError("rendition sizes must be positive and web >= thumb")
        if not 0 <= self.web_size_tolerance < 0.5:
            raise ValueError("web_size_tolerance must be in [0, 0.5)")
        if self.max_pixels <= 0 or self.max_upload_bytes <= 0 or self.workers <= 0:
            raise ValueError("limits must be positive")
        if self.gpx_max_bytes <= 0 or self.gpx_max_points <= 0 or not self.gpx_cpu_s > 0:
            raise ValueError("GPX limits must be positive")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'journal.db'}")

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
            ("max_pixels", "JOURNAL_MAX_PIXELS"),
            ("workers", "JOURNAL_WORKERS"),
            ("gpx_max_bytes", "JOURNAL_GPX_MAX_MB"),
            ("gpx_max_points", "JOURNAL_GPX_MAX_POINTS"),
        ):
            if env.get(key):
                number = int(env[key])
                values[name] = number * 1_000_000 if key.endswith("_MB") else number
        if env.get("JOURNAL_GPX_CPU_S"):
            values["gpx_cpu_s"] = float(env["JOURNAL_GPX_CPU_S"])
        if env.get("JOURNAL_ONLINE_TILES_URL"):
            values["online_tiles_url"] = env["JOURNAL_ONLINE_TILES_URL"]
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
