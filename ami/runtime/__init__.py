"""AMI's runtime: workers, collectors, the manager, and clients of a running system.

- :func:`run_worker`, :func:`run_collector`, :func:`run_manager`, :func:`run_local`: each
  process's main loop (sockets open inside it; a :class:`ami.comm.StopFlag` ends it).
- :class:`WorkerCore`, :class:`Merger`, :class:`Results`, :class:`ManagerState`: their logic
  without sockets, for tests and benchmarks.
- :func:`open_source`: ``xtc://FILES_OR_DIR`` or ``shmem://TAG``.
- :class:`ManagerClient`, :class:`ResultsClient`: commands and subscriptions.
"""

from ._client import CommandError, ManagerClient, ResultsClient
from ._collector import CollectorConfig, run_collector
from ._heartbeat import Heartbeats
from ._local import Endpoints, LocalConfig, commands, run_local
from ._manager import ManagerConfig, ManagerState, run_manager
from ._merger import Merged, Merger
from ._results import STATUS_TOPIC, Results, view_topic
from ._source import ShmemSource, Source, XtcSource, open_source
from ._worker import WorkerConfig, run_worker
from ._worker_core import WorkerCore

__all__ = [
    "STATUS_TOPIC",
    "CollectorConfig",
    "CommandError",
    "Endpoints",
    "Heartbeats",
    "LocalConfig",
    "ManagerClient",
    "ManagerConfig",
    "ManagerState",
    "Merged",
    "Merger",
    "Results",
    "ResultsClient",
    "ShmemSource",
    "Source",
    "WorkerConfig",
    "WorkerCore",
    "XtcSource",
    "commands",
    "open_source",
    "run_collector",
    "run_local",
    "run_manager",
    "run_worker",
    "view_topic",
]
