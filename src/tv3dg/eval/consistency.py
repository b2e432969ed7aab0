"""Multi-view consistency of the classifier's reading: does every view show the same object?

Attribute accuracy scores each view against a target; an asset can score 50% by being right
from the front and wrong from the back (a Janus-like split), or by being wrong everywhere in
the same way. These two numbers tell the cases apart without any target.
"""

from __future__ import annotations

from collections import Counter

ATTRIBUTES = ("shape", "colour", "pattern")


def readings(predicted: dict[str, list[str]]) -> list[tuple[str, ...]]:
    """The (shape, colour, pattern) the classifier reads in each view."""
    return list(zip(*(predicted[key] for key in ATTRIBUTES)))


def view_agreement(predicted: dict[str, list[str]]) -> float:
    """Share of views whose full reading equals the most common reading (1.0: all views agree)."""
    views = readings(predicted)
    return Counter(views).most_common(1)[0][1] / len(views)


def front_back_flip(predicted: dict[str, list[str]]) -> bool:
    """Whether the reading at the front view (azimuth 0) differs from the one at the back (180).

    Views are evenly spaced from the front (`turntable_cameras`), so the back is view V/2.
    """
    views = readings(predicted)
    if len(views) % 2:
        raise ValueError(f"front/back needs an even number of evenly spaced views, got {len(views)}")
    return views[0] != views[len(views) // 2]
