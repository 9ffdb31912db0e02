"""When to look at a busy PVE task again: right when such a task usually ends.

Each kind of wait on a cluster (a clone of one template to one storage, a boot of one image, a
disk resize) keeps its last durations in the cache. The next look is planned for when the wait
usually ends; past that point PVE is asked often (every FINE seconds) for a short while, so the
end is noticed within a fraction of a second, and then less and less often. A wait nobody has
seen yet is looked at on the plain schedule: OPERATION_POLL, then a twentieth of the time
already waited, up to 5 s. Losing the cache loses nothing but a little speed.
"""

from __future__ import annotations

import statistics

from django.conf import settings
from django.core.cache import cache

# A look this soon is done in the worker (a short sleep) rather than through the queue.
INLINE = 0.3
FINE = 0.1
SAMPLES = 20
KEY = "operations:wait:{}"


def expected(key: str) -> float | None:
    """How long this wait usually takes: its lower quartile (the shortest while it has been
    seen fewer than 4 times), or None before it has been seen at all."""
    samples = cache.get(KEY.format(key)) or []
    if len(samples) < 4:
        return min(samples, default=None)
    return statistics.quantiles(samples, n=4, method="inclusive")[0]


def record(key: str, seconds: float) -> None:
    """Remember one wait's duration (the last SAMPLES are kept)."""
    if seconds < 0:
        return
    samples = (cache.get(KEY.format(key)) or [])[-(SAMPLES - 1) :]
    cache.set(KEY.format(key), [*samples, round(seconds, 3)], timeout=7 * 24 * 3600)


def next_look(key: str, waited: float) -> float:
    """Seconds until the next look at a wait that has lasted `waited` seconds so far."""
    usual = expected(key)
    if usual is not None:
        if waited < usual - FINE:
            return usual - waited
        if waited < usual + max(1.0, 0.2 * usual):
            return FINE
    poll = settings.OPERATION_POLL
    return min(max(poll, 0.05 * waited), max(poll, 5.0))
