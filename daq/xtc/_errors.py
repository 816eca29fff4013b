"""The one exception type of the format library."""

from __future__ import annotations


class XtcError(Exception):
    """Malformed or unreadable XTC2 data, naming where: the source (file) and byte offset.

    Every decoding problem the library detects (bad extents, unknown NamesIds, impossible sizes,
    truncation in strict mode, rule violations found by the validator) raises this type, so callers
    catch one thing. ``rule`` is a short machine-readable name of the broken rule.
    """

    def __init__(self, message: str, *, source: str = "<buffer>", offset: int = -1,
                 rule: str = "format") -> None:
        self.message = message
        self.source = source
        self.offset = offset
        self.rule = rule
        where = source if offset < 0 else f"{source} at byte {offset}"
        super().__init__(f"{where}: {message} [{rule}]")


class XtcTruncatedError(XtcError):
    """A file ends inside a dgram (raised only by strict readers; others warn and count)."""


class XtcTruncatedWarning(UserWarning):
    """A file ends inside a dgram: every complete dgram was read, the incomplete tail was not."""
