"""Who may receive an account's e-mail bundles: one address each, from the list the owner allows.

The owner holds the SMTP account `journal send` uses, so the owner's own messages may go to any
one address; every other account's messages only go to an address or @domain listed in
JOURNAL_MAIL_ALLOWED_RECIPIENTS (nobody when it is empty). Checked when a bundle is made and again
when it is sent.
"""

from __future__ import annotations

import logging

from journal.config import Settings
from journal.errors import InvalidInput
from journal.models import User
from journal.publish import mail

logger = logging.getLogger(__name__)


def policy(settings: Settings) -> mail.RecipientPolicy:
    """The owner's allow-list from the settings (InvalidInput names a bad entry)."""
    return mail.RecipientPolicy.parse(settings.mail_allowed_recipients)


def allowed_text(settings: Settings, *, is_owner: bool) -> list[str]:
    """What the export page shows: the recipients this account may use ([] when none is allowed)."""
    return ["any one address"] if is_owner else policy(settings).describe()


def check_recipient(settings: Settings, user: User, to: str) -> str:
    """The one plain address in `to` when this account may mail it; InvalidInput otherwise."""
    address = mail.parse_recipient(to)
    if user.is_owner or policy(settings).allows(address):
        return address
    allowed = ", ".join(policy(settings).describe()) or "none (the owner allows no recipients)"
    logger.warning("account %d asked for recipient %s, which is not allowed", user.id, address)
    raise InvalidInput(f"{address} is not allowed as a recipient for your account; allowed: {allowed}")


def is_allowed(settings: Settings, *, is_owner: bool, address: str) -> bool:
    """Whether a message of an account (owner or not) may go to this plain address."""
    return is_owner or policy(settings).allows(address)
