"""The control-room GUI of AMI: a source browser, an operations editor, live views (images with
ROIs, traces with cursors, histograms, strip charts, scatter, scalars, tables), sessions, and a
headless status-and-snapshots mode.

- :func:`main`: ``ami-gui`` / ``ami gui`` (``--headless`` for no display).
- :class:`AmiClient` (+ :class:`ClientConfig`): the connection; one I/O thread, no network
  I/O in the UI thread; construction does no I/O.
- :class:`MainWindow`, :class:`GraphEditor`, :class:`ViewWindow`: the widgets, handed a client.
- :func:`run_headless` (+ :class:`HeadlessConfig`): status lines and one PNG per view.
- :class:`Session`: the session file (graph, views, layout).
- :class:`LiveFeed`, :class:`LocalAmi`: a synthetic live feed into shared memory and
  ``ami local`` as a child process, for trying the GUI, tests, screenshots and benchmarks.
"""

from ._backend import LocalAmi
from ._cli import main
from ._client import AmiClient, ClientConfig, Statistics
from ._editor import GraphEditor
from ._feed import LiveFeed
from ._headless import HeadlessConfig, run_headless
from ._main import MainWindow
from ._session import Session, SessionError
from ._viewwin import ViewWindow

__all__ = [
    "AmiClient",
    "ClientConfig",
    "GraphEditor",
    "HeadlessConfig",
    "LiveFeed",
    "LocalAmi",
    "MainWindow",
    "Session",
    "SessionError",
    "Statistics",
    "ViewWindow",
    "main",
    "run_headless",
]
