"""Partition configs: shipped examples load; mistakes are named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.config import PartitionError, load_partition, parse_partition

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = {"experiment": "x1", "nodes": [{"id": 1, "detectors": [{"kind": "gasdet"}]}]}


@pytest.mark.parametrize("name", ["small.toml", "demo.toml"])
def test_examples_load(name: str) -> None:
    cfg = load_partition(EXAMPLES / name)
    assert cfg.nodes and cfg.builders >= 1


@pytest.mark.parametrize("change,key,words", [
    ({"experiment": "bad name"}, "experiment", "must match"),
    ({"nodes": []}, "nodes", "at least one"),
    ({"nodes": [{"id": 1, "detectors": [{"kind": "nosuch"}]}]}, "nodes[0].detectors[0]",
     "nosuch"),
    ({"nodes": [{"id": 1, "detectors": [{"kind": "gasdet"}]},
                {"id": 1, "detectors": [{"kind": "ebeam"}]}]}, "nodes[1].id", "used twice"),
    ({"nodes": [{"id": 1, "group": 3, "detectors": [{"kind": "gasdet"}]}]}, "nodes[0].group",
     "not in timing.readout_groups"),
    ({"network": {"timing_group": "10.0.0.1"}}, "network.timing_group", "not a multicast"),
    ({"network": {"timing_port": 70000}}, "network.timing_port", "above the maximum"),
    ({"network": {"bogus": 1}}, "network.bogus", "unknown key"),
    ({"builders": {"count": 0}}, "builders.count", "below the minimum"),
    ({"control": {"address": "http://x"}}, "control.address", "tcp://HOST:PORT"),
    ({"monitor": {"tag": "../etc"}}, "monitor.tag", "letters"),
    ({"timing": {"beam_rate": 7.0}}, "beam_rate", ""),
])
def test_mistakes_name_the_key(change: dict, key: str, words: str) -> None:
    with pytest.raises(PartitionError) as info:
        parse_partition(BASE | change)
    assert repr(key) in str(info.value) or key in str(info.value)
    assert words in str(info.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(PartitionError, match="cannot read"):
        load_partition(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("experiment = [unterminated")
    with pytest.raises(PartitionError, match="not valid TOML"):
        load_partition(bad)
