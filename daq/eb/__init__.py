"""Event building: contributions matched by pulse id and retired in time order."""

from ._batch import BuiltBatch, build_rows
from ._builder import BuilderCounters, Built, BuiltEvent, EventBuilder
from ._pool import BufferPool

__all__ = [
           "BufferPool",
           "BuilderCounters",
           "Built",
           "BuiltBatch",
           "BuiltEvent",
           "EventBuilder",
           "build_rows",
]
