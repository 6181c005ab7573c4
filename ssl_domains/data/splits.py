"""Stratified, group-aware splits and few-label subsets, seeded. Only indices go in and out:
which data they index (never the test set, see ``engine.finetune``) is the caller's choice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ssl_domains.errors import ConfigError

__all__ = ["split_off", "label_subset"]


def split_off(
    n: int,
    fraction: float,
    seed: int,
    labels: Sequence[int] | None = None,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..n-1`` into (keep, held_out) with ``fraction`` held out.

    Stratified by ``labels`` when given and every class has >= 2 items, with at least one
    item of each class held out (otherwise a plain seeded shuffle); items sharing a group
    (e.g. one case's patches) stay on the same side. With labels and groups, the first of 50
    seeded group splits that leaves every class on both sides is taken. With a single group
    (one case or recording) the held-out part is its last contiguous ``fraction``.

    Raises:
        ConfigError: Fewer than 2 items or too few groups; with labels, no group split (or, for
            a single group, no tail stretch) that keeps every class on both sides.
    """
    idx = np.arange(n)
    n_out = max(1, int(round(n * fraction)))
    if n < 2:
        raise ConfigError(f"cannot split {n} item(s) into training and validation data")
    if groups is not None and 2 <= len(set(groups)) < n:
        if len(set(groups)) * fraction < 1:
            raise ConfigError(
                f"cannot hold out {fraction:.0%} of {len(set(groups))} groups (cases/recordings) for "
                "validation; give more cases, a larger val_fraction, or a separate val loader"
            )
        tries = 50 if labels is not None else 1
        # scikit-learn is imported where it splits: importing it loads pandas (when installed),
        # which importing the training engine must not
        from sklearn.model_selection import GroupShuffleSplit

        gss = GroupShuffleSplit(n_splits=tries, test_size=fraction, random_state=seed)
        splits = gss.split(idx, groups=np.asarray(groups))
        if labels is None:
            keep, out = next(splits)
            return np.sort(keep), np.sort(out)
        y = np.asarray(labels)
        classes = set(np.unique(y).tolist())
        for keep, out in splits:
            if set(y[keep].tolist()) == classes and set(y[out].tolist()) == classes:
                return np.sort(keep), np.sort(out)
        raise ConfigError(
            f"no split of the {len(set(groups))} groups (cases/recordings) holds out "
            f"{fraction:.0%} for validation with every class ({', '.join(map(str, sorted(classes)))}) "
            "on both sides; give a separate val loader, more labeled cases, or another val_fraction"
        )
    if groups is not None and len(set(groups)) < 2:
        # one recording/case: hold out its last contiguous stretch, so overlapping windows
        # do not leak between training and validation
        if labels is not None:
            y = np.asarray(labels)
            classes = set(np.unique(y).tolist())
            held = set(y[n - n_out:].tolist())
            if held != classes or set(y[: n - n_out].tolist()) != classes:
                raise ConfigError(
                    f"validation is carved from the last {fraction:.0%} of the only case/recording and "
                    f"would hold class(es) {', '.join(map(str, sorted(held)))} of "
                    f"{', '.join(map(str, sorted(classes)))}; with one labeled case give a separate "
                    "val loader (e.g. another recording) or label more cases"
                )
        return idx[: n - n_out], idx[n - n_out :]
    rng = np.random.RandomState(seed)
    if labels is not None:
        y = np.asarray(labels)
        n_classes = len(np.unique(y))
        counts = np.bincount(y - y.min()) if len(y) else np.array([])
        if n_classes > 1 and counts[counts > 0].min() >= 2:
            from sklearn.model_selection import StratifiedShuffleSplit  # see GroupShuffleSplit

            # at least one item of each class held out (a 20 % carve of 7 items holds 2, not 1)
            n_out = max(n_out, n_classes)
            sss = StratifiedShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
            keep, out = next(sss.split(idx, y))
            return _every_class_held_out(np.sort(keep), np.sort(out), y, rng)
    perm = rng.permutation(n)
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


def _every_class_held_out(keep: np.ndarray, out: np.ndarray, y: np.ndarray,
                          rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, out)`` with one item of each class missing from ``out`` swapped in for an item
    of the class ``out`` holds most of (scikit-learn's proportional allocation gives a class
    with 2 of 10 items none of a 2-item carve). Every class has >= 2 items, so ``keep`` keeps
    one of each."""
    kept, held = [int(i) for i in keep], [int(i) for i in out]
    for c in np.unique(y):
        if (y[held] == c).any():
            continue
        values, n_held = np.unique(y[held], return_counts=True)
        most = values[np.argmax(n_held)]
        give = int(rng.choice([i for i in held if y[i] == most]))
        take = int(rng.choice([i for i in kept if y[i] == c]))
        held[held.index(give)], kept[kept.index(take)] = take, give
    return np.sort(np.asarray(kept)), np.sort(np.asarray(held))


def label_subset(
    labels: Sequence[int],
    seed: int,
    fraction: float | None = None,
    count: int | None = None,
) -> np.ndarray:
    """Indices of a stratified labeled subset: ``fraction`` of the items or ``count`` items.

    Every class keeps at least one item, so a 1 % budget on an imbalanced set still sees the
    rare class. The same (labels, seed, size) always gives the same subset. Budgets of one
    (labels, seed) are not drawn independently: each class's items are shuffled once by
    ``seed`` (the same order for every budget) and a budget takes the first ``alloc[c]`` of
    each class's order, so a smaller budget is nested in a larger one, except where the
    largest-remainder rounding gives a class fewer items at the larger budget (then that
    class's nesting breaks for that pair of budgets).

    Raises:
        ConfigError: The budget is larger than the data or smaller than the number of classes.
    """
    y = np.asarray(labels)
    n = len(y)
    if fraction is None and count is None:
        return np.arange(n)
    k = int(round(n * fraction)) if fraction is not None else int(count)  # type: ignore[arg-type]
    classes = np.unique(y)
    if k > n:
        raise ConfigError(f"label budget {k} is larger than the {n} labeled items available")
    if k >= n:
        return np.arange(n)
    if k < len(classes):
        raise ConfigError(
            f"label budget {k} is smaller than the number of classes ({len(classes)}); "
            "use a larger label_fraction or label_count"
        )
    rng = np.random.RandomState(seed)
    # proportional allocation, at least one per class (largest remainders get the rest)
    share = np.array([(y == c).sum() for c in classes], dtype=float) / n * k
    alloc = np.maximum(1, np.floor(share).astype(int))
    while alloc.sum() > k:
        alloc[np.argmax(alloc)] -= 1
    order = np.argsort(-(share - np.floor(share)))
    i = 0
    while alloc.sum() < k:
        c = order[i % len(classes)]
        if alloc[c] < (y == classes[c]).sum():
            alloc[c] += 1
        i += 1
    chosen = [rng.permutation(np.flatnonzero(y == c))[:a] for c, a in zip(classes, alloc)]
    return np.sort(np.concatenate(chosen))
