"""GUI: image view redraw rate on 2.3 Mpix frames, and the GUI's memory over a soak of live
data (a feed and ``ami local`` in child processes, every kind of view open).

``python -m benchmarks.bench_gui --soak 600`` runs the 10-minute soak on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ._common import Result

SUITE = "gui"
FRAME = (1200, 1920)  # 2.3 Mpix
SOAK_GRAPH = {
    "schema": "ami-graph", "version": 1,
    "nodes": [
        {"name": "r", "op": "roi", "inputs": {"image": "cam:raw"},
         "params": {"r0": 100, "r1": 400, "c0": 100, "c1": 400}},
        {"name": "p", "op": "projection", "inputs": {"image": "r.area"}},
        {"name": "h", "op": "histogram1d", "inputs": {"value": "gasdet:energy"},
         "params": {"nbins": 100, "lo": 0, "hi": 5}},
        {"name": "sc", "op": "strip_chart", "inputs": {"value": "r.sum"}},
        {"name": "xy", "op": "scatter", "inputs": {"x": "gasdet:energy", "y": "r.sum"}},
        {"name": "ci", "op": "cursor_integral", "inputs": {"y": "acq:wave"},
         "params": {"a": 80, "b": 120}},
    ],
    "views": {"image": "cam:raw", "proj": "p", "energy": "h", "strip": "sc", "scatter": "xy",
              "wave": "acq:wave", "integral": "ci"},
}


_APP: list[object] = []  # the QApplication must outlive every widget


def _app() -> object:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtWidgets import QApplication

    if not _APP:
        _APP.append(QApplication.instance() or QApplication(sys.argv[:1]))
    return _APP[0]


def image_fps(frames: int, dtype: str) -> float:
    """Frames/s of the image view: new 1200 x 1920 frame, auto levels, histogram, repaint."""
    _app()
    from PyQt5.QtWidgets import QApplication

    from gui._render_image import ImageRenderer

    view = ImageRenderer()
    view.resize(1000, 700)
    view.show()
    rng = np.random.default_rng(0)
    ring = [rng.integers(0, 4000, FRAME).astype(dtype) for _ in range(4)]
    view.show_value(ring[0])
    QApplication.processEvents()
    t0 = time.perf_counter()
    for i in range(frames):
        view.show_value(ring[i % len(ring)])
        view.canvas.viewport().repaint()  # paint now, synchronously
        QApplication.processEvents()
    dt = time.perf_counter() - t0
    view.close()
    view.deleteLater()
    QApplication.processEvents()
    return frames / dt


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(seconds: float, warmup: float = 5.0) -> tuple[float, float, float, float]:
    """(RSS growth MB after warm-up, RSS at the end MB, image redraws/s, events/s)."""
    _app()
    from PyQt5.QtCore import QEventLoop, QTimer

    from ami.graph import Graph
    from gui import AmiClient, LocalAmi, MainWindow

    tag = f"benchgui{os.getpid()}"
    feed = subprocess.Popen([sys.executable, "-c", "from gui._feed import main; main()",
                             "--tag", tag, "--rate", "60", "--shape", "512x512"])
    ami = LocalAmi(f"shmem://{tag}", workers=1)
    win: MainWindow | None = None
    try:
        ami.start()
        win = MainWindow(AmiClient(ami.client_config))
        win.show()
        win.start()

        def spin(t: float) -> None:
            loop = QEventLoop()
            QTimer.singleShot(int(t * 1000), loop.quit)
            loop.exec_()

        deadline = time.monotonic() + 30
        while not win.editor.sources and time.monotonic() < deadline:
            spin(0.2)
        win.editor.graph = Graph.from_dict(SOAK_GRAPH)
        win.editor.apply()
        spin(1.0)
        win.open_all_views()
        spin(warmup)
        rss0, draws0 = _rss_mb(), win.windows["image"].draws
        t0 = time.monotonic()
        spin(seconds)
        dt = time.monotonic() - t0
        rss1 = _rss_mb()
        draws = win.windows["image"].draws - draws0
        status = win.status
        rate = sum(float(c.get("rate", 0)) for w, c in (status.workers if status else {}).items()
                   if not w.startswith("collector:"))
        return rss1 - rss0, rss1, draws / dt, rate
    finally:
        if win is not None:
            win.stop()
            win.close()
        ami.close()
        feed.terminate()
        feed.wait(10)


def run(quick: bool, soak_seconds: float | None = None) -> list[Result]:
    frames = 15 if quick else 150
    out = []
    for dtype in ("uint16", "float32"):
        fps = image_fps(frames, dtype)
        out.append(Result(SUITE, f"image view redraw, 2.3 Mpix {dtype}", fps, "frames/s", 20.0,
                          note=f"{frames} frames, auto levels, offscreen"))
    seconds = soak_seconds if soak_seconds is not None else (8.0 if quick else 60.0)
    growth, rss, redraw, rate = soak(seconds, warmup=3.0 if quick else 10.0)
    note = f"{seconds:.0f} s live soak, 7 views, 512x512 at 60 Hz; RSS {rss:.0f} MB at the end"
    out.append(Result(SUITE, "GUI memory growth over the soak", max(growth, 1e-3), "MB", 50.0,
                      higher_is_better=False, note=note))
    out.append(Result(SUITE, "image view redraws during the soak", max(redraw, 1e-3), "/s", 30.0,
                      higher_is_better=False, note=f"{rate:.0f} events/s processed by AMI"))
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_gui")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--soak", type=float, default=None, help="soak seconds (600: 10 min)")
    args = parser.parse_args()
    for r in run(args.quick, args.soak):
        print(r.row(), flush=True)
