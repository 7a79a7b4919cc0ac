"""journal: an offline-first, geotagged travel photo journal."""

__version__ = "0.1.0"
