"""The AMI benchmark's worker loop, run briefly so that it never rots."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_ami import cspad_graph, image_graph, worker_rate


def test_worker_loop_benchmarks_run():
    assert worker_rate(image_graph(), "img", (1024, 1024), np.float64, 3) > 0
    assert worker_rate(cspad_graph(), "cspad", (32, 185, 388), np.uint16, 3) > 0
