"""Credentials masked out of every text the library writes.

Driver errors carry their connection strings: libpq puts the whole DSN, password
included, into some of its messages, and reprs of settings-like dicts carry
their secrets. :func:`redact` masks them before a message leaves the library:
``lifespan.*.failed`` messages, log records (tracebacks included, see
:class:`RedactingFilter`), the health view and ``manage.py resources``.
It imports nothing from Django.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Final

MASK: Final = "****"

_SECRET_NAME: Final = (
    r"(?:[A-Za-z0-9]+_)*(?:pg)?(?:password|passwd|pwd|secret|token|api_?key|secret_?key"  # noqa: S105
    r"|private_?key|access_?key|credentials?)"
)
"""A name that holds a secret: ``PASSWORD``, ``db_password``, ``API_TOKEN``, ``api_key``
(not ``cache_key`` nor ``monkey``)."""

_VALUE: Final = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|b'(?:[^'\\]|\\.)*'|[^\s,;)}\]]+)"""

_PATTERNS: Final = (
    # scheme://user:password@host -> scheme://user:****@host; the password runs to the
    # last "@" before the path (one slash too: libpq echoes a malformed
    # "postgresql:/user:password@host" whole in its error).
    re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*:/{1,2}[^\s:/?#@'\"]*:)[^\s/?#'\"]*(?=@)"),
    # name=value, as libpq keyword strings and keyword reprs write it
    re.compile(rf"(?P<keep>\b{_SECRET_NAME}\s*=\s*){_VALUE}", re.IGNORECASE),
    # 'NAME': value, as the repr of a settings-like dict writes it
    re.compile(rf"(?P<keep>(?P<q>['\"]){_SECRET_NAME}(?P=q)\s*:\s*){_VALUE}", re.IGNORECASE),
    # Authorization: Bearer <token>
    re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)[A-Za-z0-9\-._~+/]+=*"),
)


def redact(text: str) -> str:
    """``text`` with passwords in URLs, libpq strings and secret-named keys masked."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: match.group("keep") + MASK, text)
    return text


def describe_error(error: BaseException) -> str:
    """``Type: message`` of ``error`` (just ``Type`` when it has no text), masked."""
    text = str(error)
    kind = type(error).__name__
    return redact(f"{kind}: {text}" if text else kind)


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message and in its formatted traceback.

    The message is formatted once and its arguments dropped; the traceback is
    formatted into ``record.exc_text``, which ``logging.Formatter`` prints instead
    of formatting ``exc_info`` again. (A formatter that formats ``exc_info`` itself,
    ignoring ``exc_text``, bypasses the second part.)
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drop it."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a bad format string is logging's to report)
            return True
        masked = redact(message)
        if masked != message:  # else the record keeps its template (log aggregators group by it)
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        return True


_FILTER: Final = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with credentials masked in what it logs.

    A filter on a logger applies to its own records only, not to its children's:
    every logger of the library is made here.
    """
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def where_raised(error: BaseException, *, skip: tuple[str, ...] = (), line: bool = False) -> str:
    """`` at file:line`` of the innermost frame that raised ``error``, or ``""``.

    Frames whose file name contains one of ``skip`` are passed over (to point at
    the user's code rather than a framework's); ``line`` adds the source line.
    """
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not any(part in frame.filename for part in skip)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {frame.filename}:{frame.lineno}" + (f" ({frame.line})" if line else "")
