"""A client process for the tests: ``python -m tests.shmem._worker DIR TAG MODE [ARGS]``.

MODE ``hold N``: take N events and hold them until stdin closes or the process is killed.
MODE ``count GROUP DISTMODE DELAY``: read until Disable (sleeping DELAY s per event, a slow
reader), then print its statistics as JSON. Prints ``ready`` once attached.
"""

from __future__ import annotations

import json
import sys
import time

from daq.xtc import TransitionId
from shmem import Message, ShmemClient


def main(argv: list[str]) -> int:
    directory, tag, mode = argv[:3]
    if mode == "hold":
        with ShmemClient(tag, "holders", directory=directory) as c:
            print("ready", flush=True)
            held: list[Message] = []
            while len(held) < int(argv[3]):
                m = c.take(timeout=30)
                assert m is not None
                if m.is_event:
                    held.append(m)
                else:
                    m.release()
            print("holding", flush=True)
            sys.stdin.read()  # until the test closes stdin or kills us
        return 0
    group, dist, delay = argv[3], argv[4], float(argv[5])
    seen = []
    with ShmemClient(tag, group, dist, directory=directory) as c:
        print("ready", flush=True)
        for dg in c:
            if dg.service == TransitionId.Disable:
                break
            if dg.is_event:
                seen.append(dg.nanoseconds)
                if delay:
                    time.sleep(delay)  # a slow analysis, not a synchronisation
        c.release()
        print(json.dumps({"id": c.id, "seen": seen, **c.statistics()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
