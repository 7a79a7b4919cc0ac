"""HTTP layer: one blueprint per area; handlers parse, call services, render."""

from __future__ import annotations

from flask import Blueprint

from journal.web.auth import bp as auth_bp
from journal.web.main import bp as main_bp

BLUEPRINTS: list[Blueprint] = [main_bp, auth_bp]
