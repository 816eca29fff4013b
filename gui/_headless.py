"""Headless mode: connect, open every view of the manager's graph offscreen, print the live
status every ``interval`` seconds for ``duration`` seconds, write one PNG per view, exit.
Ctrl-C (SIGINT) or SIGTERM ends it early, still writing the pictures."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from PyQt5.QtCore import QEventLoop, QTimer
from PyQt5.QtWidgets import QApplication

from ami.graph import Graph

from ._client import AmiClient
from ._main import MainWindow

VIEW_SIZE = (800, 560)


@dataclass
class HeadlessConfig:
    duration: float = 10.0
    interval: float = 1.0
    snapshots: Path | None = Path("data/snapshots")
    graph: Path | None = None
    session: Path | None = None
    connect_timeout: float = 10.0


def _spin(loop_until: float, done: list[bool], step_ms: int = 50) -> None:
    """Run the Qt event loop until a monotonic deadline or ``done[0]``."""
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(step_ms)

    def check() -> None:
        if done[0] or time.monotonic() >= loop_until:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    loop.exec_()
    timer.stop()


def run_headless(client: AmiClient, cfg: HeadlessConfig, out: TextIO = sys.stdout) -> int:
    """The headless run; 0 on success, 2 if the manager never answered."""
    app = QApplication.instance()
    assert app is not None, "create a QApplication first"
    stop = [False]
    old = {s: signal.signal(s, lambda *_: stop.__setitem__(0, True))
           for s in (signal.SIGINT, signal.SIGTERM)}
    window = MainWindow(client)
    window.resize(1280, 800)
    try:
        window.show()
        window.start()
        connected = [False]
        client.connected_changed.connect(lambda up: connected.__setitem__(0, up))
        _spin(time.monotonic() + cfg.connect_timeout, connected)
        if not client.connected:
            print(f"ami-gui: no answer from the manager at {client.config.command} within "
                  f"{cfg.connect_timeout:.0f} s", file=out, flush=True)
            return 2
        if cfg.session is not None:
            window.load_session(cfg.session)
        elif cfg.graph is not None:
            window.editor.load_graph(cfg.graph)
        print(f"ami-gui: connected to {client.config.command}", file=out, flush=True)
        t_end = time.monotonic() + cfg.duration
        while not stop[0] and time.monotonic() < t_end:
            _spin(min(t_end, time.monotonic() + cfg.interval), stop)
            _open_all(window)
            print(window.status_line(), file=out, flush=True)
        _open_all(window)
        _spin(time.monotonic() + 0.3, [False])  # let the last updates draw
        if cfg.snapshots is not None:
            written = window.save_snapshots(cfg.snapshots)
            for path in written:
                print(f"wrote {path}", file=out, flush=True)
        return 0
    finally:
        window.stop()
        window.close()
        for s, h in old.items():
            signal.signal(s, h)


def _open_all(window: MainWindow) -> None:
    graph: Graph = window.editor.graph
    for name in graph.views:
        if name not in window.windows:
            window.open_view(name, floating=True)
            window.docks[name].resize(*VIEW_SIZE)
