"""Exceptions of the calibration package."""

from __future__ import annotations


class CalibError(ValueError):
    """Calibration constants are missing, malformed or do not fit the detector."""


class GeometryError(CalibError):
    """A geometry file is malformed; the message starts with ``file:line:``."""
