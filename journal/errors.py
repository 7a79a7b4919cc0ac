"""Exceptions raised by the library; the web and CLI layers translate them."""


class JournalError(Exception):
    """Base class for every error the journal reports to a user."""


class UnreadableFile(JournalError):
    """A file could not be read as an image or track (broken, truncated, not an image)."""


class UnsupportedFile(JournalError):
    """A file is of a kind the journal does not handle."""


class ImageTooLarge(UnreadableFile):
    """An image declares more pixels than the configured limit (a decompression bomb)."""


class PrivacyLeak(JournalError):
    """A file written for a bundle still carries what its location mode forbids: it is not shipped."""


class NotFound(JournalError):
    """The requested object does not exist for this user."""


class Conflict(JournalError):
    """The request clashes with existing data (a name already taken, ...)."""


class InvalidInput(JournalError):
    """A value given by the user is not acceptable."""


class AuthError(JournalError):
    """Authentication failed or is missing."""


class QuotaExceeded(JournalError):
    """The account's storage quota leaves no room for what would be written."""


class WrongDatabase(JournalError):
    """The configured database does not match the files of the data home (empty, another, or older)."""
