"""Errors of offline access."""

from __future__ import annotations


class OfflineError(Exception):
    """A problem the user can fix: no such run, detector, constants, bad config. One line."""
