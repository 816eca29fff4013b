"""Event building: contributions matched by pulse id and retired in time order."""

from ._builder import BuilderCounters, BuiltEvent, EventBuilder

__all__ = ["BuilderCounters", "BuiltEvent", "EventBuilder"]
