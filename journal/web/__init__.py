"""HTTP layer: one blueprint per area; handlers parse, call services, render (sharing journal.web.context)."""

from __future__ import annotations

from flask import Blueprint

from journal.web.api import bp as api_bp
from journal.web.auth import bp as auth_bp
from journal.web.export import bp as export_bp
from journal.web.geo_api import bp as geo_api_bp
from journal.web.library import bp as library_bp
from journal.web.main import bp as main_bp
from journal.web.maps import bp as maps_bp
from journal.web.media import bp as media_bp
from journal.web.openapi import bp as openapi_bp
from journal.web.posts import bp as posts_bp
from journal.web.trips import bp as trips_bp
from journal.web.upload import bp as upload_bp

BLUEPRINTS: list[Blueprint] = [main_bp, auth_bp, upload_bp, api_bp, media_bp]
BLUEPRINTS += [library_bp, posts_bp, trips_bp, geo_api_bp]
BLUEPRINTS += [export_bp]
BLUEPRINTS += [maps_bp]
BLUEPRINTS += [openapi_bp]
