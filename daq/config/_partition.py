"""The partition config: a TOML file describing one DAQ partition, validated before anything starts.

Every error names the key (``nodes[1].detectors[0].kind``) and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daq.timing import ConfigError, TimingConfig

_NAME_RE = re.compile(r"^[0-9A-Za-z_]+$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
MAX_NODES = 0xEFF


class PartitionError(ValueError):
    """A partition config is invalid; the message names the key and the problem."""


def _fail(key: str, msg: str) -> PartitionError:
    return PartitionError(f"config key {key!r}: {msg}")


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise _fail(f"{where}{key}", f"expected a table, got {type(value).__name__}")
    return value


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
         where: str = "", lo: float | None = None, hi: float | None = None) -> Any:
    value: Any = data.get(key, default)
    full = f"{where}{key}"
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and kind is not bool:
        raise _fail(full, f"expected {getattr(kind, '__name__', kind)}, got a boolean")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise _fail(full, f"expected {names}, got {value!r}")
    number: Any = value
    if lo is not None and number < lo:
        raise _fail(full, f"{value} is below the minimum {lo}")
    if hi is not None and number > hi:
        raise _fail(full, f"{value} is above the maximum {hi}")
    return value


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise _fail(f"{where}{extra[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


@dataclass(frozen=True)
class DetectorConfig:
    kind: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeConfig:
    """A readout node: its id (Segment src and NamesId node bits), readout group, detectors."""

    id: int
    name: str
    group: int
    detectors: tuple[DetectorConfig, ...]


@dataclass(frozen=True)
class NetworkConfig:
    interface: str = "127.0.0.1"
    timing_group: str = "239.255.10.1"
    timing_port: int = 20100
    builder_group_base: str = "239.255.11.1"
    builder_port: int = 20200
    fragment_size: int = 60000
    rcvbuf: int = 256 << 20
    batch: int = 64  #: most small L1Accept contributions per datagram (1: one per datagram)
    ttl: int = 1
    checksum: str = "header"  #: "header" or "full" (the CRC also covers every payload byte)

    def builder_group(self, index: int) -> str:
        return str(ipaddress.IPv4Address(self.builder_group_base) + index)


@dataclass(frozen=True)
class RecordingConfig:
    enabled: bool = True
    chunk_bytes: int = 1 << 31
    inline_limit: int = 1024
    direct_io: bool = True  #: big files bypass the page cache (O_DIRECT) from a writer thread


@dataclass(frozen=True)
class ScanConfig:
    variable: str = "motor"
    values: tuple[float, ...] = ()
    events_per_step: int = 0


@dataclass(frozen=True)
class PartitionConfig:
    experiment: str
    data_root: Path
    partition: int
    timing: TimingConfig
    nodes: tuple[NodeConfig, ...]
    builders: int
    network: NetworkConfig
    recording: RecordingConfig
    control: str
    eb_timeout: float
    eb_transition_timeout: float
    slow_update_hz: float
    scan: ScanConfig | None
    monitor_tag: str | None
    monitor_buffers: int
    monitor_buffer_size: int
    source: str = "<dict>"

    def node(self, node_id: int) -> NodeConfig:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"no node with id {node_id}")

    def group_members(self) -> dict[int, list[int]]:
        """Readout group -> node ids that read it (a node belongs to one group)."""
        out: dict[int, list[int]] = {}
        for n in self.nodes:
            out.setdefault(n.group, []).append(n.id)
        return out


def load_partition(path: str | Path, overrides: Mapping[str, Any] | None = None) -> \
        PartitionConfig:
    """Read and validate a partition TOML file (relative data roots are taken from the cwd)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise PartitionError(f"cannot read partition config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PartitionError(f"{path}: not valid TOML: {exc}") from None
    if overrides:
        data = _merge(data, overrides)
    return parse_partition(data, source=str(path))


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_partition(data: Mapping[str, Any], source: str = "<dict>") -> PartitionConfig:
    """Validate plain data (as parsed from TOML) into a PartitionConfig."""
    try:
        return _parse(data, source)
    except ConfigError as exc:
        if isinstance(exc, PartitionError):
            raise
        raise PartitionError(f"config key 'timing': {exc}") from None


def _parse(data: Mapping[str, Any], source: str) -> PartitionConfig:
    _unknown(data, {"experiment", "data_root", "partition", "timing", "nodes", "builders",
                    "network", "recording", "control", "eb", "slow_update_hz", "scan",
                    "monitor"}, "")
    expt = _get(data, "experiment", str, None)
    if expt is None:
        raise _fail("experiment", "missing: name the experiment, e.g. experiment = \"xpp12345\"")
    if not _NAME_RE.match(expt):
        raise _fail("experiment", f"{expt!r} must match [0-9A-Za-z_]+")
    data_root = Path(_get(data, "data_root", str, "data"))
    partition = _get(data, "partition", int, 0, lo=0, hi=0xFFFF)
    timing_raw = dict(_table(data, "timing", ""))
    groups_raw = timing_raw.get("readout_groups")
    if isinstance(groups_raw, Mapping):  # TOML table keys are strings: "1" = 4
        try:
            timing_raw["readout_groups"] = {int(k): v for k, v in groups_raw.items()}
        except ValueError:
            raise _fail("timing.readout_groups", "keys must be group numbers 0..15") from None
    try:
        timing = TimingConfig.from_dict(timing_raw)
    except ConfigError as exc:
        raise PartitionError(str(exc)) from None

    nodes_raw = data.get("nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        raise _fail("nodes", "give at least one [[nodes]] table")
    nodes: list[NodeConfig] = []
    seen_ids: set[int] = set()
    seen_dets: set[str] = set()
    groups = {g for g, _ in (timing.readout_groups.items()
                             if isinstance(timing.readout_groups, Mapping)
                             else timing.readout_groups)}
    for i, raw in enumerate(nodes_raw):
        where = f"nodes[{i}]."
        if not isinstance(raw, Mapping):
            raise _fail(f"nodes[{i}]", "expected a table")
        _unknown(raw, {"id", "name", "group", "detectors"}, where)
        nid = _get(raw, "id", int, i + 1, where, lo=1, hi=MAX_NODES)
        if nid in seen_ids:
            raise _fail(f"{where}id", f"node id {nid} is used twice")
        seen_ids.add(nid)
        name = _get(raw, "name", str, f"node{nid}", where)
        group = _get(raw, "group", int, 0, where, lo=0, hi=15)
        if group not in groups:
            raise _fail(f"{where}group", f"readout group {group} is not in timing.readout_groups "
                        f"({sorted(groups)})")
        dets_raw = raw.get("detectors")
        if not isinstance(dets_raw, list) or not dets_raw:
            raise _fail(f"{where}detectors", "give at least one detector")
        dets = []
        for j, d in enumerate(dets_raw):
            dwhere = f"{where}detectors[{j}]."
            if not isinstance(d, Mapping):
                raise _fail(f"{where}detectors[{j}]", "expected a table")
            kind = _get(d, "kind", str, None, dwhere)
            dname = _get(d, "name", str, kind, dwhere)
            if kind is None:
                raise _fail(f"{dwhere}kind", "missing (e.g. cspad, acqiris, gasdet, epics)")
            if not _NAME_RE.match(dname or ""):
                raise _fail(f"{dwhere}name", f"{dname!r} must match [0-9A-Za-z_]+")
            if dname in seen_dets:
                raise _fail(f"{dwhere}name", f"detector name {dname!r} is used twice")
            seen_dets.add(dname)
            params = {k: v for k, v in d.items() if k not in ("kind", "name")}
            dets.append(DetectorConfig(kind, dname, params))
        nodes.append(NodeConfig(nid, name, group, tuple(dets)))
    _check_detectors(nodes)

    builders_raw = data.get("builders", 1)
    if isinstance(builders_raw, Mapping):
        _unknown(builders_raw, {"count"}, "builders.")
        builders = _get(builders_raw, "count", int, 1, "builders.", lo=1, hi=64)
    else:
        builders = _get(data, "builders", int, 1, lo=1, hi=64)

    net_raw = _table(data, "network", "")
    _unknown(net_raw, {"interface", "timing_group", "timing_port", "builder_group_base",
                       "builder_port", "fragment_size", "rcvbuf", "ttl", "checksum", "batch"},
             "network.")
    checksum = _get(net_raw, "checksum", str, "header", "network.")
    if checksum not in ("header", "full"):
        raise _fail("network.checksum", f"{checksum!r}: use \"header\" or \"full\"")
    d = NetworkConfig()
    network = NetworkConfig(
        interface=_ip(net_raw, "interface", d.interface, multicast=False),
        timing_group=_ip(net_raw, "timing_group", d.timing_group, multicast=True),
        timing_port=_get(net_raw, "timing_port", int, d.timing_port, "network.", 1, 65535),
        builder_group_base=_ip(net_raw, "builder_group_base", d.builder_group_base,
                               multicast=True),
        builder_port=_get(net_raw, "builder_port", int, d.builder_port, "network.", 1, 65535),
        fragment_size=_get(net_raw, "fragment_size", int, d.fragment_size, "network.", 512,
                           65000),
        rcvbuf=_get(net_raw, "rcvbuf", int, d.rcvbuf, "network.", 65536),
        batch=_get(net_raw, "batch", int, d.batch, "network.", 1, 4096),
        ttl=_get(net_raw, "ttl", int, d.ttl, "network.", 0, 255),
        checksum=checksum,
    )
    last = ipaddress.IPv4Address(network.builder_group_base) + (builders - 1)
    if not last.is_multicast:
        raise _fail("network.builder_group_base", "builder groups run out of the multicast range")

    rec_raw = _table(data, "recording", "")
    _unknown(rec_raw, {"enabled", "chunk_bytes", "inline_limit", "direct_io"}, "recording.")
    recording = RecordingConfig(
        enabled=_get(rec_raw, "enabled", bool, True, "recording."),
        chunk_bytes=_get(rec_raw, "chunk_bytes", int, 1 << 31, "recording.", lo=1 << 16),
        inline_limit=_get(rec_raw, "inline_limit", int, 1024, "recording.", lo=0, hi=1 << 20),
        direct_io=_get(rec_raw, "direct_io", bool, True, "recording."),
    )
    ctl_raw = _table(data, "control", "")
    _unknown(ctl_raw, {"address"}, "control.")
    control = _get(ctl_raw, "address", str, "tcp://127.0.0.1:20300", "control.")
    if not re.match(r"^(tcp://[^\s:]+:\d+|ipc://\S+)$", control):
        raise _fail("control.address", f"{control!r} is not tcp://HOST:PORT or ipc://PATH")
    eb_raw = _table(data, "eb", "")
    _unknown(eb_raw, {"timeout", "transition_timeout"}, "eb.")
    eb_timeout = _get(eb_raw, "timeout", float, 2.0, "eb.", lo=0.01, hi=600)
    eb_transition_timeout = _get(eb_raw, "transition_timeout", float, 30.0, "eb.", lo=0.01,
                                 hi=3600)
    slow = _get(data, "slow_update_hz", float, 1.0, lo=0.0, hi=100.0)

    scan = None
    if "scan" in data:
        s = _table(data, "scan", "")
        _unknown(s, {"variable", "values", "events_per_step"}, "scan.")
        values = s.get("values")
        if not isinstance(values, list) or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise _fail("scan.values", "give a non-empty list of numbers")
        var = _get(s, "variable", str, "motor", "scan.")
        if not _NAME_RE.match(var):
            raise _fail("scan.variable", f"{var!r} must match [0-9A-Za-z_]+")
        scan = ScanConfig(var, tuple(float(v) for v in values),
                          _get(s, "events_per_step", int, 100, "scan.", lo=1))
    mon = _table(data, "monitor", "")
    _unknown(mon, {"tag", "buffers", "buffer_size"}, "monitor.")
    tag = _get(mon, "tag", str, None, "monitor.")
    if tag is not None and not _TAG_RE.match(tag):
        raise _fail("monitor.tag", f"{tag!r}: use letters, digits, '_', '.', '-' (max 64)")
    return PartitionConfig(
        experiment=expt, data_root=data_root, partition=partition, timing=timing,
        nodes=tuple(nodes), builders=builders, network=network, recording=recording,
        control=control, eb_timeout=eb_timeout, eb_transition_timeout=eb_transition_timeout,
        slow_update_hz=slow, scan=scan,
        monitor_tag=tag,
        monitor_buffers=_get(mon, "buffers", int, 16, "monitor.", lo=2, hi=1024),
        monitor_buffer_size=_get(mon, "buffer_size", int, 8 << 20, "monitor.", lo=4096),
        source=source)


def _ip(data: Mapping[str, Any], key: str, default: str, multicast: bool) -> str:
    text = _get(data, key, str, default, "network.")
    try:
        addr = ipaddress.IPv4Address(text)
    except ValueError:
        raise _fail(f"network.{key}", f"{text!r} is not an IPv4 address") from None
    if multicast and not addr.is_multicast:
        raise _fail(f"network.{key}", f"{text} is not a multicast address (224.0.0.0/4)")
    return text


def _check_detectors(nodes: list[NodeConfig]) -> None:
    """Build each detector once (cheap: no noise banks) so bad kinds/params fail now."""
    from daq.sim import make_detector

    for i, node in enumerate(nodes):
        for j, det in enumerate(node.detectors):
            try:
                make_detector(det.kind, det.name, **det.params)
            except (ValueError, TypeError) as exc:
                raise _fail(f"nodes[{i}].detectors[{j}]", str(exc)) from None
