"""AMI's graph: what a user asks AMI to compute, checked, and the code that runs it.

- :class:`Graph` / :class:`Node`: named nodes (an operation of :mod:`ami.ops`, inputs, parameters,
  an optional gating filter) and views; saved as JSON with a schema version.
- :func:`sources_from_names`: the sources a Configure announces (``det:field``, typed by rank).
- :func:`validate`: a :class:`Plan` or a :class:`GraphError` listing every problem.
- :class:`EventStage` (workers, per event) and :class:`HeartbeatStage` (global collector, per
  heartbeat) run a plan.
"""

from ._model import SCHEMA, SCHEMA_VERSION, Graph, GraphError, Node
from ._plan import Plan, PlannedNode, validate
from ._run import EventStage, HeartbeatStage, NodeErrors, plain
from ._sources import SourceInfo, source_type, sources_from_names

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "EventStage",
    "Graph",
    "GraphError",
    "HeartbeatStage",
    "Node",
    "NodeErrors",
    "Plan",
    "PlannedNode",
    "SourceInfo",
    "plain",
    "source_type",
    "sources_from_names",
    "validate",
]
