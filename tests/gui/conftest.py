"""A real AMI behind the GUI tests: a synthetic live feed into shared memory (stamped with the
wall clock) and ``ami local`` on ipc:// endpoints, one per test module."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator

import pytest

from ami.graph import Graph
from gui import AmiClient, LiveFeed, LocalAmi, MainWindow


def set_graph(qtbot, win: MainWindow, graph: Graph) -> None:
    """Apply ``graph`` through the editor and wait until the manager has it."""
    win.editor.graph = graph
    win.editor._refresh()
    win.editor.apply()
    qtbot.waitUntil(lambda: win.editor.pending_applies == 0
                    and Graph.from_dict(win.client.graph or {"version": 1}) == graph
                    if win.client.graph else False, timeout=10000)


_TAGS = itertools.count()


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalAmi]:
    tag = f"guitest{os.getpid()}n{next(_TAGS)}"
    with LiveFeed(tag, rate=30.0), LocalAmi(f"shmem://{tag}", workers=1) as ami:
        yield ami


@pytest.fixture
def window(qtbot, backend: LocalAmi) -> Iterator[MainWindow]:
    win = MainWindow(AmiClient(backend.client_config))
    qtbot.addWidget(win)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.client.connected and bool(win.editor.sources), timeout=20000)
    set_graph(qtbot, win, Graph())
    yield win
    win.stop()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in set(threading.enumerate()) - before
              if t.is_alive() and t.name.startswith("ami-gui")]
    assert not leaked, f"threads left running: {leaked}"
