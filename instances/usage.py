"""Usage graphs from PVE's rrddata, drawn on the server as SVG.

Pages never wait on PVE: the graphs partial reads the cache, and when the cache has nothing it
asks a worker to fetch (instances.refresh_usage) and shows "loading" until it is there. Samples
are kept USAGE_CACHE_SECONDS, so a page open for a while refreshes them about once a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache

TIMEFRAMES = {"hour": "Last hour", "day": "Last day", "week": "Last week", "month": "Last month"}
WIDTH, HEIGHT = 600, 160
KEY = "usage:{}:{}"
LOCK = "usage-fetching:{}:{}"


@dataclass(frozen=True)
class Line:
    label: str
    style: str  # "solid" or "dashed": told apart without colour
    points: str  # SVG polyline points in the chart's viewBox
    last: tuple[str, str] | None  # the newest point, marked (a line of one sample is a dot)
    latest: str
    peak: str


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    lines: list[Line]
    top: str  # the value at the top of the chart
    rows: list[tuple[str, ...]]  # the same data as a table, for screen readers


def cached(instance_id: int, timeframe: str) -> list[dict] | None:
    return cache.get(KEY.format(instance_id, timeframe))


def store(instance_id: int, timeframe: str, samples: list[dict]) -> None:
    cache.set(KEY.format(instance_id, timeframe), samples, timeout=settings.USAGE_CACHE_SECONDS)
    cache.delete(LOCK.format(instance_id, timeframe))


def should_fetch(instance_id: int, timeframe: str) -> bool:
    """True for the one request that should ask a worker to fetch (others wait for it)."""
    return cache.add(LOCK.format(instance_id, timeframe), 1, timeout=30)


def _bytes_rate(value: float) -> str:
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B/s"


def _bits_rate(value: float) -> str:
    bits = value * 8
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= size:
            return f"{bits / size:.1f} {unit}"
    return f"{bits:.0f} bit/s"


def _gib(value: float) -> str:
    return f"{value / 1024**3:.2f} GiB"


def _percent(value: float) -> str:
    return f"{value:.1f} %"


def _chart(title, unit, samples, series, fmt, *, ceiling: float | None = None) -> Chart:
    """series: (label, style, value of a sample or None)."""
    times = [sample["time"] for sample in samples]
    values = [[get(sample) for sample in samples] for _label, _style, get in series]
    known = [v for column in values for v in column if v is not None]
    top = ceiling or max(known or [0]) * 1.15 or 1
    start, span = (times[0], (times[-1] - times[0]) or 1) if times else (0, 1)
    lines = []
    for (label, style, _get), column in zip(series, values, strict=True):
        coordinates = [
            (f"{(t - start) / span * WIDTH:.1f}", f"{HEIGHT - min(v, top) / top * HEIGHT:.1f}")
            for t, v in zip(times, column, strict=True)
            if v is not None
        ]
        points = " ".join(f"{x},{y}" for x, y in coordinates)
        present = [v for v in column if v is not None]
        lines.append(
            Line(
                label,
                style,
                points,
                coordinates[-1] if coordinates else None,
                fmt(present[-1]) if present else "—",
                fmt(max(present)) if present else "—",
            )
        )
    rows = [
        (
            f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M}",
            *(fmt(v) if v is not None else "—" for v in row),
        )
        for t, *row in zip(times, *values, strict=True)
        if any(v is not None for v in row)
    ]
    return Chart(title, unit, lines, fmt(top), rows)


def charts(samples: list[dict]) -> list[Chart]:
    """CPU, memory, network and disk charts from PVE's rrddata samples."""
    has = [sample for sample in samples if "time" in sample]

    def field(name, scale=1.0):
        return lambda s: float(s[name]) * scale if s.get(name) is not None else None

    maxmem = max((float(s.get("maxmem") or 0) for s in has), default=0) or None
    return [
        _chart(
            "CPU",
            "%",
            has,
            [("CPU", "solid", field("cpu", 100))],
            _percent,
            ceiling=100,
        ),
        _chart("Memory", "GiB", has, [("In use", "solid", field("mem"))], _gib, ceiling=maxmem),
        _chart(
            "Network",
            "bit/s",
            has,
            [("In", "solid", field("netin")), ("Out", "dashed", field("netout"))],
            _bits_rate,
        ),
        _chart(
            "Disk I/O",
            "B/s",
            has,
            [("Read", "solid", field("diskread")), ("Write", "dashed", field("diskwrite"))],
            _bytes_rate,
        ),
    ]
