"""AMI, the online monitor: a graph of operations (:mod:`ami.ops`) over the events of a run,
computed by workers, merged by collectors at heartbeats, and published as views.

Subpackages: :mod:`ami.graph` (model, validation, execution), :mod:`ami.comm` (messages and
wire format), :mod:`ami.runtime` (processes and clients), :mod:`ami.cli` (``python -m ami``).
"""

from ami.graph import Graph, GraphError, Node, validate
from ami.runtime import ManagerClient, ResultsClient, open_source

__all__ = [
    "Graph",
    "GraphError",
    "ManagerClient",
    "Node",
    "ResultsClient",
    "open_source",
    "validate",
]
