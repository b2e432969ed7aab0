"""Statistics of the ablation: means with 95% bootstrap intervals over cases and seeds, seed-to-seed
spread, and paired differences between variants on the same cases and seeds.

The bootstrap is two-level, because cases and seeds are two sources of variation: each replicate
draws cases with replacement, then seeds with replacement within each drawn case, and averages.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

REPLICATES = 2000
NEGLIGIBLE = 0.005  # differences of shares below half a percentage point are render noise, not effects
# A difference needs this many cases before it can be called one: with fewer, the bootstrap over
# cases degenerates (one case gives a point), and even if every case agrees a sign test could not
# reach 5% (all of 5 cases the same way: 2/32 = 6%; of 6: 2/64 = 3%).
MIN_CASES = 6


def by_case(values: dict[tuple[str, int], float]) -> dict[str, list[float]]:
    """{(case, seed): value} -> {case: [values over seeds]}, NaNs dropped."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for (case, _seed), value in sorted(values.items()):
        if value == value:
            grouped[case].append(float(value))
    return dict(grouped)


def bootstrap_interval(values: dict[tuple[str, int], float], replicates: int = REPLICATES, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean, resampling cases and then seeds within each case.

    All replicates at once: the cases' seeds sit in one zero-padded [cases, most seeds] array, and
    each draw of a case takes `count` uniform seed positions below its own count."""
    groups = list(by_case(values).values())
    if not groups:
        return float("nan"), float("nan")
    counts = np.array([len(group) for group in groups])
    table = np.zeros((len(groups), counts.max()))
    for row, group in enumerate(groups):
        table[row, : len(group)] = group
    rng = np.random.default_rng(seed)
    picked = rng.integers(len(groups), size=(replicates, len(groups)))  # [R, cases]
    picked_counts = counts[picked][..., None]  # [R, cases, 1]
    positions = np.floor(rng.random((replicates, len(groups), counts.max())) * picked_counts).astype(int)
    drawn = np.take_along_axis(table[picked], positions, axis=2)  # [R, cases, most seeds]
    used = np.arange(counts.max()) < picked_counts  # a case with fewer seeds draws only that many
    means = ((drawn * used).sum(axis=2) / picked_counts[..., 0]).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def seed_std(values: dict[tuple[str, int], float]) -> float:
    """Mean over cases of the standard deviation across seeds (ddof 1); NaN with one seed."""
    spreads = [np.std(v, ddof=1) for v in by_case(values).values() if len(v) > 1]
    return float(np.mean(spreads)) if spreads else float("nan")


def summarise(values: dict[tuple[str, int], float]) -> dict:
    """Mean, seed-to-seed std, 95% interval and count of one metric of one variant."""
    flat = [v for group in by_case(values).values() for v in group]
    low, high = bootstrap_interval(values)
    return {"mean": float(np.mean(flat)) if flat else float("nan"), "seed_std": seed_std(values),
            "ci95": [low, high], "n": len(flat)}


def paired(a: dict[tuple[str, int], float], b: dict[tuple[str, int], float]) -> dict:
    """a - b on the (case, seed) pairs both have; `sign` is "+" or "-" only when the pairs cover at
    least MIN_CASES cases and the 95% interval excludes zero by more than NEGLIGIBLE, "0" otherwise
    (whether higher is better depends on the metric)."""
    common = {k: a[k] - b[k] for k in a.keys() & b.keys() if a[k] == a[k] and b[k] == b[k]}
    result = summarise(common)
    low, high = result["ci95"]
    result["cases"] = len(by_case(common))
    if result["cases"] < MIN_CASES:
        result["sign"] = "0"
    else:
        result["sign"] = "+" if low > NEGLIGIBLE else "-" if high < -NEGLIGIBLE else "0"
    return result
