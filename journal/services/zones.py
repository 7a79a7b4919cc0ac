"""Privacy zones: a user's circles (home, family) inside which no position is ever exported."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from journal.errors import InvalidInput, NotFound
from journal.models import PrivacyZone
from journal.publish import location

logger = logging.getLogger(__name__)

MAX_LABEL_CHARS = 100
#: A zone is at least a house and at most a region; bigger circles are better served by `--location none`.
MIN_RADIUS_M = 10.0
MAX_RADIUS_M = 100_000.0


@dataclass(frozen=True)
class ZoneInput:
    """A zone's fields, checked: label, centre (degrees) and radius (metres)."""

    label: str
    lat: float
    lon: float
    radius_m: float

    def __post_init__(self) -> None:
        if len(self.label) > MAX_LABEL_CHARS or not self.label.isprintable():
            raise InvalidInput(f"a zone label is at most {MAX_LABEL_CHARS} printable characters")
        if not MIN_RADIUS_M <= self.radius_m <= MAX_RADIUS_M:
            raise InvalidInput(f"the radius must be between {MIN_RADIUS_M:g} and {MAX_RADIUS_M:,.0f} metres")
        location.PrivacyZone(self.lat, self.lon, self.radius_m)  # checks the position

    @classmethod
    def parse(cls, label: str, lat: str, lon: str, radius_m: str) -> ZoneInput:
        """From form fields (numbers as text; a decimal comma is accepted)."""
        return cls(
            label=" ".join(label.split()),
            lat=_number(lat, "latitude"),
            lon=_number(lon, "longitude"),
            radius_m=_number(radius_m, "radius"),
        )


def _number(text: str, what: str) -> float:
    """A float from user text; InvalidInput names the field otherwise."""
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        raise InvalidInput(f"the {what} is not a number") from None


def list_zones(session: Session, user_id: int) -> list[PrivacyZone]:
    """The user's zones, in the order they were added."""
    return list(
        session.scalars(select(PrivacyZone).where(PrivacyZone.user_id == user_id).order_by(PrivacyZone.id))
    )


def add_zone(session: Session, user_id: int, zone: ZoneInput) -> PrivacyZone:
    """Store a new zone for the user; flushes."""
    row = PrivacyZone(user_id=user_id, label=zone.label, lat=zone.lat, lon=zone.lon, radius_m=zone.radius_m)
    session.add(row)
    session.flush()
    logger.info("privacy zone %d added for user %d", row.id, user_id)
    return row


def delete_zone(session: Session, user_id: int, zone_id: int) -> None:
    """Remove one of the user's zones; NotFound for a missing id or somebody else's zone."""
    row = session.get(PrivacyZone, zone_id)
    if row is None or row.user_id != user_id:
        raise NotFound("no such privacy zone")
    session.delete(row)
    session.flush()


def zones_for(session: Session, user_id: int) -> list[location.PrivacyZone]:
    """The user's zones as the plain values location.public_location takes."""
    return [location.PrivacyZone(z.lat, z.lon, z.radius_m, z.label) for z in list_zones(session, user_id)]
