"""Train-subject folds (data_prep/folds.py): CASIA-FASD's public folds, stratified folds,
a partial copy with empty used folds refused, overlaps and gaps caught."""
from __future__ import annotations

import pytest

from data_prep import casia, folds


def test_casia_folds_disjoint_and_cover_the_train_subjects():
    train = {s: 0.25 for s in casia.SUBJECTS["train"]}
    f, method = folds.assign_folds(train, casia.SUBJECTS["test"], "auto", 5, 1)
    assert method == "casia" and f == [tuple(x) for x in casia.CASIA_FOLDS]
    flat = [s for x in f for s in x]
    assert sorted(flat) == list(casia.SUBJECTS["train"]) and len(flat) == len(set(flat))
    # a subset keeps each subject in its public fold (the synthetic mini set: one per fold)
    f, _ = folds.assign_folds({s: 0.25 for s in (1, 2, 4, 8, 10)}, (1, 2), "auto", 5, 1)
    assert f == [(10,), (8,), (1,), (4,), (2,)]
    with pytest.raises(ValueError, match="stratified"):
        folds.assign_folds({21: 0.5}, (), "casia", 5, 1)


def test_stratified_folds_deterministic_balanced_disjoint():
    # subjects 1..23, some with missing genuine videos
    frac = {s: (0.25 if s % 4 else 0.1) for s in range(1, 24)}
    a, m = folds.assign_folds(frac, range(1, 31), "stratified", 5, 7)
    b, _ = folds.assign_folds(frac, range(1, 31), "stratified", 5, 7)
    assert m == "stratified" and a == b
    sizes = [len(x) for x in a]
    assert max(sizes) - min(sizes) <= 1
    low = [sum(frac[s] == 0.1 for s in x) for x in a]
    assert max(low) - min(low) <= 1                     # the odd subjects are spread out
    flat = [s for x in a for s in x]
    assert sorted(flat) == list(range(1, 24))
    assert folds.assign_folds(frac, (), "auto", 5, 7)[1] == "stratified"   # 21..23 not in CASIA folds


def test_partial_copy_with_empty_used_folds_is_refused():
    """Train subjects 1-4 only: the public folds leave folds 1 and 2 empty. With folds.use 5
    that is an error naming the folds and the keys; folds not in use may stay empty."""
    four = {s: 0.25 for s in (1, 2, 3, 4)}
    with pytest.raises(ValueError) as e:
        folds.assign_folds(four, (1, 2), "auto", 5, 1, use=5)
    msg = str(e.value)
    assert "folds 1 and 2 of 5" in msg and "folds.method: stratified" in msg
    assert "folds.use: 5" in msg and "at most 4" in msg and "1, 2, 3, 4" in msg
    f, m = folds.assign_folds(four, (1, 2), "auto", 5, 1)            # no use given: no check
    assert m == "casia" and f[0] == () and f[1] == ()
    # what the message asks for works: stratified, 4 folds, all used
    f, m = folds.assign_folds(four, (1, 2), "stratified", 4, 1, use=4)
    assert m == "stratified" and all(f)
    # stratified with more folds than subjects is refused too, by the same rule
    with pytest.raises(ValueError, match="fold 5 of 5 would have no train subject"):
        folds.assign_folds(four, (1, 2), "stratified", 5, 1, use=5)
    # an empty fold outside 1..use is no error (subjects 10 and 8: folds 1 and 2 only)
    f, _ = folds.assign_folds({10: 0.25, 8: 0.25}, (1,), "auto", 5, 1, use=2)
    assert f == [(10,), (8,), (), (), ()]


def test_check_folds_catches_overlap_and_gaps():
    with pytest.raises(AssertionError, match="fold 1 and fold 2"):
        folds.check_folds([(1, 2), (2, 3)], [1, 2, 3], [])
    with pytest.raises(AssertionError, match="cover"):
        folds.check_folds([(1,), (2,)], [1, 2, 3], [])
