"""Event screeners (smalldata_tools' cube ``event_screener``): ``apply(data) -> (passes, label)``.

``data`` is ``{det: {key: value}}`` (a row of per-event results, e.g. ``data["lightStatus"]
["laser"]``); a flat ``{"det/key": value}`` dict works too. A value that is missing or NaN never
passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def lookup(data: Mapping[str, Any], det: str, key: str) -> Any:
    flat = data.get(f"{det}/{key}")
    if flat is not None:
        return flat
    sub = data.get(det)
    if isinstance(sub, Mapping):
        return sub.get(key)
    return None


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


class Filter:
    label: str

    def apply(self, data: Mapping[str, Any]) -> tuple[bool, str]:
        raise NotImplementedError

    def __call__(self, data: Mapping[str, Any]) -> bool:
        return self.apply(data)[0]


class ThresholdFilter(Filter):
    """Passes when ``det/key`` > ``threshold`` (``greater_than``) or < it."""

    def __init__(self, det: str, key: str, threshold: float, greater_than: bool = True,
                 label: str = "") -> None:
        self.det, self.key, self.threshold = det, key, float(threshold)
        self.greater_than = greater_than
        self.label = label or f"{det}_{key}_{'gt' if greater_than else 'lt'}_{threshold:g}"

    def apply(self, data: Mapping[str, Any]) -> tuple[bool, str]:
        v = _number(lookup(data, self.det, self.key))
        ok = v is not None and (v > self.threshold if self.greater_than else v < self.threshold)
        return ok, self.label


class RangeFilter(Filter):
    """Passes when ``min <= det/key <= max`` (inclusive)."""

    def __init__(self, det: str, key: str, min: float, max: float, label: str = "") -> None:
        self.det, self.key, self.min, self.max = det, key, float(min), float(max)
        self.label = label or f"{det}_{key}_{min:g}_{max:g}"

    def apply(self, data: Mapping[str, Any]) -> tuple[bool, str]:
        v = _number(lookup(data, self.det, self.key))
        return v is not None and self.min <= v <= self.max, self.label


class BoolFilter(Filter):
    """Passes when ``det/key`` (non-zero = True) equals ``expected_state``."""

    def __init__(self, det: str, key: str, expected_state: bool = True, label: str = "") -> None:
        self.det, self.key, self.expected_state = det, key, bool(expected_state)
        self.label = label or f"{det}_{key}_{'on' if expected_state else 'off'}"

    def apply(self, data: Mapping[str, Any]) -> tuple[bool, str]:
        v = _number(lookup(data, self.det, self.key))
        return v is not None and (v != 0) == self.expected_state, self.label


class CompositeFilter(Filter):
    """All (``require_all``) or any of ``filters``. The label is ``label`` if given, else the
    '_'-joined labels of the children that passed (laser_on / laser_off screening)."""

    def __init__(self, filters: Sequence[Filter], require_all: bool = True,
                 label: str = "") -> None:
        if not filters:
            raise ValueError("CompositeFilter needs at least one filter")
        self.filters = list(filters)
        self.require_all = require_all
        self.label = label

    def apply(self, data: Mapping[str, Any]) -> tuple[bool, str]:
        results = [f.apply(data) for f in self.filters]
        passed = [lab for ok, lab in results if ok]
        ok = len(passed) == len(results) if self.require_all else bool(passed)
        return ok, self.label or "_".join(passed)


class AllEvents(Filter):
    """Every event passes, labelled ``label``."""

    def __init__(self, label: str = "all") -> None:
        self.label = label

    def apply(self, data: Mapping[str, Any]) -> tuple[bool, str]:
        return True, self.label
