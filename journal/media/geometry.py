"""The frame a rendition must fill: a width or a long edge, and a range of aspect ratios.

A platform preset (publish/platforms.Platform) is one; the renditions module plans its crop and
exact size from it without knowing about platforms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from journal.errors import InvalidInput


class Frame(Protocol):
    """What a rendition's geometry depends on (None: no limit of that kind)."""

    @property
    def long_edge(self) -> int | None: ...

    @property
    def width(self) -> int | None: ...

    @property
    def aspect_range(self) -> tuple[float, float] | None: ...


@dataclass(frozen=True)
class Geometry:
    """How to turn a source image into a framed one: crop box (or None), then resize to `size`."""

    crop: tuple[int, int, int, int] | None
    size: tuple[int, int]


def plan_geometry(width: int, height: int, frame: Frame) -> Geometry:
    """Centre crop to the frame's aspect range, then scale down (never up) to its width/long edge."""
    if width <= 0 or height <= 0:
        raise InvalidInput("image has no pixels")
    crop = _centre_crop(width, height, frame.aspect_range)
    cw, ch = (crop[2] - crop[0], crop[3] - crop[1]) if crop else (width, height)
    scale = 1.0
    if frame.width is not None:
        scale = min(scale, frame.width / cw)
    if frame.long_edge is not None:
        scale = min(scale, frame.long_edge / max(cw, ch))
    size = _within_aspect((max(1, round(cw * scale)), max(1, round(ch * scale))), frame)
    return Geometry(crop=crop, size=size)


def _within_aspect(size: tuple[int, int], frame: Frame) -> tuple[int, int]:
    """The rounded size moved by a pixel where rounding took it out of the aspect range.

    Instagram's 1.91:1 at 1080 px wide is 565.4 px tall: 565 would be 1.9115:1, outside the range,
    so the height rounds up (566). The width or long edge the preset sets is never the one moved.
    """
    if frame.aspect_range is None:
        return size
    (width, height), (low, high) = size, frame.aspect_range
    if width / height > high:
        return width, math.ceil(width / high)
    if width / height < low:
        if frame.width is not None or width > height:
            return width, math.floor(width / low)
        return math.ceil(height * low), height
    return size


def _centre_crop(
    width: int, height: int, aspect_range: tuple[float, float] | None
) -> tuple[int, int, int, int] | None:
    """The centred box that brings width/height into aspect_range, or None when it already fits."""
    if aspect_range is None:
        return None
    low, high = aspect_range
    aspect = width / height
    if aspect > high:
        new_w = max(1, math.floor(height * high))
        left = (width - new_w) // 2
        return (left, 0, left + new_w, height)
    if aspect < low:
        new_h = max(1, math.floor(width / low))
        top = (height - new_h) // 2
        return (0, top, width, top + new_h)
    return None
