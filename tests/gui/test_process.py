"""The GUI outliving a restart of AMI, and the headless mode as ``make demo`` runs it."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ami.graph import Graph, Node
from gui import AmiClient, LiveFeed, LocalAmi, MainWindow

from .conftest import set_graph

pytestmark = pytest.mark.slow
WAIT = 20000
GRAPH = Graph((Node("r", "roi", {"image": "cam:raw"}, {"r0": 0, "r1": 20, "c0": 0, "c1": 20}),),
              {"image": "cam:raw", "total": "r.sum"})


@pytest.fixture
def own_backend() -> Iterator[LocalAmi]:
    with LiveFeed("guitestrestart", rate=30.0), LocalAmi("shmem://guitestrestart") as ami:
        yield ami


def test_gui_reconnects_after_the_manager_restarts(qtbot, own_backend: LocalAmi) -> None:
    win = MainWindow(AmiClient(own_backend.client_config))
    qtbot.addWidget(win)
    win.start()
    try:
        qtbot.waitUntil(lambda: win.client.connected and bool(win.editor.sources), timeout=WAIT)
        set_graph(qtbot, win, GRAPH)
        total = win.open_view("total")
        qtbot.waitUntil(lambda: total.draws > 0, timeout=WAIT)
        own_backend.stop()  # manager, collectors and workers all go
        qtbot.waitUntil(lambda: "lost" in win.conn_label.text(), timeout=WAIT)
        assert not win.client.connected
        own_backend.start()
        qtbot.waitUntil(lambda: win.conn_label.text().startswith("connected"), timeout=WAIT)
        # the new manager has no graph: the GUI gives it back its own, and data flows again
        qtbot.waitUntil(lambda: win.reapplied == 1 and win.client.graph.get("views") ==
                        GRAPH.views, timeout=WAIT)
        drawn = total.draws
        qtbot.waitUntil(lambda: total.draws > drawn + 2, timeout=WAIT)
    finally:
        win.stop()


def test_headless_prints_status_writes_pngs_and_stops_on_ctrl_c(own_backend, tmp_path) -> None:
    graph = tmp_path / "g.json"
    GRAPH.save(graph)
    snaps = tmp_path / "snapshots"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gui", "--headless", "--duration", "60", "--interval", "0.5",
         "--manager", own_backend.client_config.command, "--results",
         own_backend.client_config.results, "--graph", str(graph), "--snapshots", str(snaps)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # ends when the process ends (the test timeout bounds it)
            lines.append(line)
            if "events/s" in line and "draws" in line and not line.endswith(" 0 draws\n"):
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(lines) + rest
    assert "connected to" in lines[0]
    written = sorted(p.name for p in snaps.iterdir())
    assert written == ["image.png", "main_window.png", "total.png"]
    assert all((snaps / n).stat().st_size > 2000 for n in written)
