"""Exceptions of the shared-memory monitoring package."""

from __future__ import annotations


class ShmemError(Exception):
    """Base class of every shmem error."""


class TagInUseError(ShmemError):
    """A live server already owns this tag."""


class ServerNotFoundError(ShmemError):
    """No server listens under this tag (never started, or gone before the attach)."""


class AttachRefusedError(ShmemError):
    """The server refused the attach (too many clients, a group mode clash, a bad request)."""


class ServerGoneError(ShmemError):
    """The server went away while the client was attached; attach again to a new one."""
