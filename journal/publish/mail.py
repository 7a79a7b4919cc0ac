"""E-mail: building MIME messages (for emailbundle.py) and sending each pending one exactly once over SMTP.

SMTP URLs
  ``smtps://user:password@host:port``  implicit TLS from the first byte (default port 465).
  ``smtp://[user:password@]host:port``  plain connection upgraded with STARTTLS (default port 587).
  On ``smtp://`` the query parameter ``starttls`` decides: ``auto`` (default) upgrades when the
  server offers STARTTLS, ``require`` fails when it does not, ``off`` never upgrades. A password
  is never sent over an unencrypted connection except to a loopback address (a local relay).
  Certificates are always verified (system CAs, or the caller's ``tls_context``).
  User name and password are percent-decoded (write ``@`` as ``%40``).

Exactly once
  Each message is checked with ``already_sent(message_id)`` right before it is sent and recorded
  with ``mark_sent(message_id)`` right after the server accepted it. SMTP itself cannot rule out
  one duplicate: when the connection drops after the DATA terminator but before the server's
  reply, the message may have been delivered and is sent again; its Message-ID lets the
  receiving side recognise it.
"""

from __future__ import annotations

import email.headerregistry
import email.policy
import email.utils
import ipaddress
import logging
import mimetypes
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from journal.errors import InvalidInput
from journal.publish.batching import eml_size

logger = logging.getLogger(__name__)

StartTls = Literal["auto", "require", "off"]
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
#: SMTP keeps lines at 998 octets and the e-mail package folds at 78: the SMTP policy does both, with CRLF.
_POLICY = email.policy.SMTP


# --- building ---


def make_message_id(domain: str = "journal.invalid") -> str:
    """A new globally unique Message-ID; no DNS look-up (email.utils.make_msgid may do one)."""
    return f"<{uuid.uuid4().hex}@{domain}>"


def build_eml(
    *,
    subject: str,
    body_text: str,
    attachments: Sequence[tuple[str, bytes | Path, str]],
    to: str | None,
    sender: str,
    message_id: str,
    date: datetime | None = None,
) -> bytes:
    """A complete MIME message (CRLF line ends) with a plain-text body and base64 attachments.

    attachments are (file name, bytes or file, MIME type). Without `to` the message has no To
    header; `journal send --to` gives the envelope recipient.
    """
    message = EmailMessage(policy=_POLICY)
    message["From"] = check_address(sender)
    if to:
        message["To"] = parse_recipient(to)
    message["Subject"] = " ".join(subject.split())
    message["Date"] = email.utils.format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = _check_message_id(message_id)
    message.set_content(body_text)
    for name, data, mime in attachments:
        maintype, _, subtype = (mime or _guess_type(name)).partition("/")
        payload = data.read_bytes() if isinstance(data, Path) else data
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=_check_filename(name))
    return message.as_bytes()


def eml_fits(attachment_sizes: Sequence[int], body_text: str, max_bytes: int | None) -> bool:
    """Whether a message with these attachments and body stays under max_bytes (estimated from above)."""
    return max_bytes is None or eml_size(attachment_sizes, len(body_text.encode("utf-8"))) <= max_bytes


def _guess_type(name: str) -> str:
    """MIME type from a file name, application/octet-stream when unknown."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def check_address(value: str) -> str:
    """Return value if it holds one plausible e-mail address (no header injection)."""
    _, address = email.utils.parseaddr(value)
    if "@" not in address or any(c in value for c in "\r\n"):
        raise InvalidInput(f"not an e-mail address: {value!r}")
    return value


# --- recipients ---

#: Characters that route mail onwards through the receiving server (RFC 1123 5.2.16, "%-hack", UUCP "!").
_ROUTING = frozenset("%!@")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def parse_recipient(value: str) -> str:
    """The one plain address in value (display name dropped, domain lowercased); InvalidInput otherwise.

    Parsed by the e-mail package's own header parser (email.headerregistry), the way a To header
    is read, and refused when it holds anything but exactly one mailbox: lists, groups, line
    breaks (header injection), parse defects, display names that hold an address (the text a
    reader sees would not be where the mail goes), route and %-hack local parts, IP literals.
    """
    value = value.strip()
    bad = InvalidInput(
        f"not an e-mail address: {value!r} (give one e-mail address, such as name@example.org)"
    )
    if not value or any(not c.isprintable() for c in value):
        raise bad
    try:
        header = email.policy.default.header_factory("To", value)
    except (HeaderParseError, IndexError, ValueError):
        raise bad from None
    groups = header.groups
    addresses = header.addresses
    if len(addresses) > 1 or any(group.display_name is not None for group in groups):
        raise InvalidInput(f"give exactly one e-mail address, not a list: {value!r}")
    if header.defects or len(addresses) != 1:
        raise bad
    address: email.headerregistry.Address = addresses[0]
    domain = address.domain.lower()
    if (
        not address.username
        or _ROUTING & set(address.username)
        or "@" in address.display_name
        or not _is_hostname(domain)
    ):
        raise bad
    return f"{email.headerregistry.Address(username=address.username, domain=domain).addr_spec}"


def _is_hostname(domain: str) -> bool:
    """A dotted host name (letters, digits, dashes; IDNA A-labels): no IP literals, no trailing dot."""
    labels = domain.split(".")
    return len(labels) >= 2 and len(domain) <= 253 and all(_DOMAIN_LABEL.match(label) for label in labels)


@dataclass(frozen=True)
class RecipientPolicy:
    """The recipients the owner allows: whole addresses and @domains, compared without case."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: str | Sequence[str]) -> RecipientPolicy:
        """From "a@b.org, @family.example" (commas or spaces) or a list; InvalidInput names a bad entry."""
        items = entries.replace(",", " ").split() if isinstance(entries, str) else list(entries)
        addresses, domains = set(), set()
        for item in (entry.strip() for entry in items):
            if item.startswith("@"):
                if not _is_hostname(item[1:].lower()):
                    raise InvalidInput(f"not a mail domain: {item!r} (write @example.org)")
                domains.add(item[1:].lower())
            elif item:
                addresses.add(parse_recipient(item).lower())
        return cls(frozenset(addresses), frozenset(domains))

    def allows(self, address: str) -> bool:
        """Whether a plain address (as parse_recipient gives it) is on the list."""
        folded = address.lower()
        return folded in self.addresses or folded.rpartition("@")[2] in self.domains

    def describe(self) -> list[str]:
        """The list for people: addresses, then "any address @domain"."""
        return sorted(self.addresses) + [f"any address @{domain}" for domain in sorted(self.domains)]


def _check_message_id(value: str) -> str:
    """Return value if it looks like <left@right>."""
    if not (value.startswith("<") and value.endswith(">") and "@" in value) or any(
        c.isspace() for c in value
    ):
        raise InvalidInput(f"not a Message-ID: {value!r}")
    return value


def _check_filename(name: str) -> str:
    """An attachment name without any folder part."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not base or base in (".", "..") or any(c in base for c in "\r\n\x00"):
        raise InvalidInput(f"bad attachment name: {name!r}")
    return base


# --- SMTP URL ---


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect, parsed from an smtp:// or smtps:// URL."""

    scheme: Literal["smtp", "smtps"]
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: StartTls = "auto"

    @property
    def is_loopback(self) -> bool:
        """True for localhost and loopback addresses."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse smtp://[user:password@]host[:port][?starttls=auto|require|off] or smtps://..."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidInput("the SMTP URL must look like smtp://host:port or smtps://user:password@host:port")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise InvalidInput("the SMTP URL has a bad port") from None
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["auto"])[-1]
    if starttls not in ("auto", "require", "off") or set(query) - {"starttls"}:
        raise InvalidInput("the only SMTP URL option is starttls=auto|require|off")
    if parts.scheme == "smtps" and starttls != "auto":
        raise InvalidInput("starttls does not apply to smtps:// (TLS from the start)")
    return SmtpTarget(
        scheme="smtps" if parts.scheme == "smtps" else "smtp",
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        starttls=starttls,  # type: ignore[arg-type]
    )


# --- sending ---


@dataclass(frozen=True)
class PendingMessage:
    """A message waiting to be sent: its Message-ID (the record key), bytes, and envelope."""

    message_id: str
    data: bytes | Path
    sender: str
    recipients: tuple[str, ...]


def pending_from_eml(data: bytes | Path, *, to: str | None = None) -> PendingMessage:
    """A PendingMessage from a built message's headers (Message-ID, From, To); `to` replaces To.

    A message goes to one address: several To headers or addresses, or any Cc, Bcc or Resent-*
    header, make it InvalidInput (the journal never writes them, so they were added by someone else).
    """
    raw = data.read_bytes() if isinstance(data, Path) else data
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    message_id = str(headers.get("Message-ID", "")).strip()
    _, sender = email.utils.parseaddr(str(headers.get("From", "")))
    extra = [
        key for key in headers.keys() if key.lower() in ("cc", "bcc") or key.lower().startswith("resent-")
    ]
    if extra:
        raise InvalidInput(f"the message has {extra[0]} recipients: only one To address is sent")
    found = headers.get_all("To", [])
    if len(found) > 1:
        raise InvalidInput("the message has several To headers: only one To address is sent")
    recipients: tuple[str, ...] = ()
    if to:
        recipients = (parse_recipient(to),)
    elif found:
        recipients = (parse_recipient(_unfold(str(found[0]))),)
    return PendingMessage(_check_message_id(message_id), data, sender, recipients)


def _unfold(value: str) -> str:
    """A header value as one line (RFC 5322 2.2.3): folding line breaks removed, bare ones kept."""
    return re.sub(r"\r?\n(?=[ \t])", "", value)


@dataclass
class SendReport:
    """What happened to each message: sent, skipped (sent before), failed (with the reason)."""

    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Recipients the server refused for a message it accepted for others: (message_id, detail).
    refused: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed and not self.refused

    def summary(self) -> str:
        """One line for the CLI."""
        return f"sent {len(self.sent)}, skipped {len(self.skipped)}, failed {len(self.failed)}"


class _Transient(Exception):
    """Worth another try: 4xx replies, dropped or refused connections, time-outs."""


class _ConnectFailed(_Transient):
    """The server could not be reached or did not greet us."""


class _Permanent(Exception):
    """This message will not go through: 5xx replies."""


class _Abort(Exception):
    """No message can go through: bad credentials, TLS failure, server unreachable."""


class _Connection:
    """One SMTP connection, opened on demand and reopened after a drop."""

    def __init__(self, target: SmtpTarget, *, timeout_s: float, tls_context: ssl.SSLContext | None) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.tls_context = tls_context or ssl.create_default_context()
        self.smtp: smtplib.SMTP | None = None

    def client(self) -> smtplib.SMTP:
        """The open connection, connecting (and logging in) first if needed."""
        if self.smtp is None:
            self.smtp = self._connect()
        return self.smtp

    def _connect(self) -> smtplib.SMTP:
        """Connect, secure and authenticate as the URL says."""
        target = self.target
        try:
            if target.scheme == "smtps":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    target.host, target.port, timeout=self.timeout_s, context=self.tls_context
                )
            else:
                smtp = smtplib.SMTP(target.host, target.port, timeout=self.timeout_s)
        except ssl.SSLError as error:
            raise _Abort(f"TLS failed: {error}") from error
        except (smtplib.SMTPException, OSError) as error:
            raise _ConnectFailed(f"cannot connect to {target.host}:{target.port}: {error}") from error
        try:
            self._secure_and_login(smtp)
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def _secure_and_login(self, smtp: smtplib.SMTP) -> None:
        """STARTTLS as configured, then AUTH when the URL has credentials."""
        target = self.target
        encrypted = target.scheme == "smtps"
        try:
            smtp.ehlo()
            if not encrypted and target.starttls != "off" and smtp.has_extn("starttls"):
                smtp.starttls(context=self.tls_context)
                smtp.ehlo()
                encrypted = True
            if not encrypted and target.starttls == "require":
                raise _Abort("the server does not offer STARTTLS (starttls=require)")
            if target.username is not None:
                if not encrypted and not target.is_loopback:
                    raise _Abort("refusing to send the password over an unencrypted connection")
                smtp.login(target.username, target.password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise _Abort(f"login refused: {error.smtp_code} {_text(error.smtp_error)}") from error
        except ssl.SSLError as error:
            raise _Abort(f"TLS failed: {error}") from error
        except smtplib.SMTPNotSupportedError as error:
            raise _Abort(f"the server does not support {error}") from error
        except smtplib.SMTPResponseException as error:
            raise _classify_reply(error.smtp_code, error.smtp_error) from error
        except (smtplib.SMTPException, OSError) as error:
            raise _Transient(f"connection lost: {error}") from error

    def drop(self) -> None:
        """Forget the connection (after an error) so the next message reconnects."""
        if self.smtp is not None:
            _close_quietly(self.smtp)
            self.smtp = None

    def close(self) -> None:
        """Say QUIT politely."""
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                logger.debug("QUIT failed; closing anyway")
            self.drop()


def _close_quietly(smtp: smtplib.SMTP) -> None:
    """Close a connection that may already be broken."""
    try:
        smtp.close()
    except OSError:
        logger.debug("closing a broken SMTP connection failed")


def _text(reply: bytes | str) -> str:
    """A server reply as text."""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _classify_reply(code: int, reply: bytes | str) -> _Transient | _Permanent:
    """4xx (and anything unexpected) is worth a retry; 5xx is final (RFC 5321, 4.2.1)."""
    detail = f"{code} {_text(reply)}"
    return _Permanent(detail) if 500 <= code < 600 else _Transient(detail)


def _deliver(connection: _Connection, message: PendingMessage, data: bytes) -> dict[str, tuple[int, bytes]]:
    """One attempt: send data; return the recipients refused while others were accepted."""
    smtp = connection.client()
    try:
        return smtp.sendmail(message.sender, list(message.recipients), data)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(text)}" for rcpt, (code, text) in error.recipients.items())
        raise (_Transient(detail) if any(400 <= c < 500 for c in codes) else _Permanent(detail)) from error
    except smtplib.SMTPResponseException as error:
        if error.smtp_code == 421:  # the server is closing the connection (RFC 5321, 3.8)
            connection.drop()
        raise _classify_reply(error.smtp_code, error.smtp_error) from error
    except (smtplib.SMTPException, OSError) as error:
        connection.drop()
        raise _Transient(f"connection lost: {error}") from error


def _send_with_retries(
    connection: _Connection,
    message: PendingMessage,
    *,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None],
) -> dict[str, tuple[int, bytes]]:
    """Send one message, retrying transient failures with exponential backoff."""
    data = message.data.read_bytes() if isinstance(message.data, Path) else message.data
    for attempt in range(retries + 1):
        try:
            return _deliver(connection, message, data)
        except _Transient as error:
            if attempt == retries:
                raise type(error)(f"gave up after {retries + 1} attempts: {error}") from error
            delay = backoff_s * 2**attempt
            logger.info("sending %s failed (%s); retrying in %.1f s", message.message_id, error, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def send_messages(
    smtp_url: str,
    messages: Iterable[PendingMessage],
    *,
    already_sent: Callable[[str], bool],
    mark_sent: Callable[[str], None],
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    tls_context: ssl.SSLContext | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Send each message not sent before, once, and report what was sent, skipped and failed.

    `retries` is the number of further attempts after a transient failure (waits backoff_s,
    2*backoff_s, ...). An error raised by mark_sent propagates: the message went out but is not
    recorded, and the caller must not carry on as if nothing happened.
    """
    target = parse_smtp_url(smtp_url)
    if retries < 0 or backoff_s < 0:
        raise InvalidInput("retries and backoff must not be negative")
    report = SendReport()
    connection = _Connection(target, timeout_s=timeout_s, tls_context=tls_context)
    abort_reason: str | None = None
    try:
        for message in messages:
            if already_sent(message.message_id):
                report.skipped.append(message.message_id)
            elif abort_reason is not None:
                report.failed.append((message.message_id, f"not sent: {abort_reason}"))
            else:
                abort_reason = _send_and_record(
                    connection, message, report, mark_sent, retries=retries, backoff_s=backoff_s, sleep=sleep
                )
    finally:
        connection.close()
    logger.info("mail: %s", report.summary())
    return report


def _send_and_record(
    connection: _Connection,
    message: PendingMessage,
    report: SendReport,
    mark_sent: Callable[[str], None],
    *,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None],
) -> str | None:
    """Send one message and file the outcome in report; return a reason to stop sending altogether."""
    if not message.recipients:
        report.failed.append((message.message_id, "no recipient (give one with --to)"))
        return None
    try:
        refused = _send_with_retries(connection, message, retries=retries, backoff_s=backoff_s, sleep=sleep)
    except (_Abort, _ConnectFailed) as error:
        # Nothing can go through: the remaining messages would only wait through the same retries.
        report.failed.append((message.message_id, str(error)))
        return str(error)
    except (_Transient, _Permanent) as error:
        report.failed.append((message.message_id, str(error)))
        return None
    mark_sent(message.message_id)
    report.sent.append(message.message_id)
    for rcpt, (code, text) in refused.items():
        report.refused.append((message.message_id, f"{rcpt}: {code} {_text(text)}"))
    return None
