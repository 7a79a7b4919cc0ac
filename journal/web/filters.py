"""Jinja filters: formatting lives here, not in templates."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from journal import clock

OFFSET_SOURCES = {
    "camera": "recorded by the camera",
    "gps": "from the GPS clock",
    "timezone": "from the time zone at the photo's position",
    "manual": "set by you",
}


def format_offset(minutes: int | None) -> str:
    """UTC offset as "UTC+05:30"."""
    if minutes is None:
        return ""
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def format_datetime(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A date and time for people; empty when unknown."""
    return clock.strftime(value, fmt) if value else ""


def format_bytes(size: int | None) -> str:
    """1234567 -> "1.2 MB"."""
    if size is None:
        return ""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return ""


def format_coord(lat: float | None, lon: float | None) -> str:
    """52.45961° N, 13.32184° E."""
    if lat is None or lon is None:
        return ""
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"{abs(lat):.5f}° {ns}, {abs(lon):.5f}° {ew}"


def describe_offset_source(source: str | None) -> str:
    """Where a photo's time zone came from, in words."""
    return OFFSET_SOURCES.get(source or "", "unknown")


LOCATION_SOURCES = {
    "exif": "from the camera's GPS",
    "xmp": "from the photo's XMP metadata",
    "track": "from a GPS track (between two points)",
    "track-nearest": "from a GPS track (nearest point)",
    "manual": "set by you",
}


def format_duration_field(seconds: float | None) -> str:
    """300 -> "5m", 5400 -> "1h30m", 45 -> "45s": a duration as the forms accept it."""
    total = round(seconds or 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0"


def describe_location_source(source: str | None) -> str:
    """Where a photo's position came from, in words."""
    return LOCATION_SOURCES.get(source or "", "unknown")


def format_altitude(metres: float | None) -> str:
    """1234.5 -> "1,235 m"; negative values are below sea level."""
    if metres is None:
        return ""
    if metres < 0:
        return f"{-metres:,.0f} m below sea level"
    return f"{metres:,.0f} m"


def format_count(number: int, noun: str, plural: str | None = None) -> str:
    """(1234, "photo") -> "1,234 photos"; (1, "photo") -> "1 photo"."""
    word = noun if number == 1 else (plural or noun + "s")
    return f"{number:,} {word}"


def camera_name(make: str | None, model: str | None) -> str:
    """ "Canon EOS 5D" from make "Canon" and model "Canon EOS 5D"; empty when neither is known."""
    from journal.services.editing import camera_label

    return "" if not (make or model) else camera_label(make, model)


def format_degrees(value: float | None) -> str:
    """Decimal degrees for a form field: at most 6 decimals (about 0.1 m), no trailing zeros."""
    if value is None:
        return ""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def basename(path: str | None) -> str:
    """The last part of a file path as the user gave it ("C:\\Photos\\a.jpg" -> "a.jpg")."""
    return (path or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.jinja_env.filters.update(
        offset=format_offset,
        dt=format_datetime,
        filesize=format_bytes,
        coord=format_coord,
        offset_source=describe_offset_source,
        location_source=describe_location_source,
        altitude=format_altitude,
        count=format_count,
        camera=camera_name,
        basename=basename,
        degrees=format_degrees,
        duration=format_duration_field,
    )
