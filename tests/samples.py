"""The shared sample files beside the repository (../shared/samples): photos with EXIF, GPX tracks."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXIF_SAMPLES = SHARED / "samples" / "exif"
GPX_SAMPLES = SHARED / "samples" / "gpx"


def exif_sample(name: str) -> Path:
    """Path of a file in ../shared/samples/exif; FileNotFoundError saying why when it is missing."""
    path = EXIF_SAMPLES / name
    if not path.exists():
        raise FileNotFoundError(f"sample {name} missing: is ../shared beside the repository?")
    return path
