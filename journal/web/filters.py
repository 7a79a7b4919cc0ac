"""Jinja filters: formatting lives here, not in templates."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

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
    return value.strftime(fmt) if value else ""


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


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.jinja_env.filters.update(
        offset=format_offset,
        dt=format_datetime,
        filesize=format_bytes,
        coord=format_coord,
        offset_source=describe_offset_source,
    )
