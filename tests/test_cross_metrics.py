"""AUC, TPR at a given FPR, FAR thresholds and EPC against bob.measure's definitions and
its published test values (tests/test_error.py of bob.measure), scikit-learn's exact AUC
and hand-worked cases."""
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import roc_auc_score

from eval import metrics as m


def test_far_threshold_bob_uncomputable_cases():
    # bob.measure test_for_uncomputable_thresholds, case 1: several identical scores
    pos = [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    neg = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0]
    assert m.far_threshold(neg, pos, 0.5) == 1.0
    assert m.far_threshold(neg, pos, 0.4) > neg[-1]
    pos = [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    neg = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert m.far_threshold(neg, pos, 0.5) == 1.0
    assert m.far_threshold(neg, pos, 0.49) > neg[-1]
    # case 2: too few scores for the desired FAR
    neg = np.arange(10, dtype=float)
    assert m.far_threshold(neg, neg, 0.09) > 9.0
    assert m.far_threshold(neg, neg, 0.11) == 9.0
    assert m.far_threshold(neg, neg, 0.91) == 1.0
    assert m.far_threshold(neg, neg, 1) <= 0.0
    with pytest.raises(ValueError, match="at least 2"):
        m.far_threshold([0.3], [0.5], 0.1)


def test_far_threshold_keeps_far_at_most_the_target():
    rng = np.random.default_rng(3)
    neg, pos = rng.normal(0, 1, 300), rng.normal(2, 1, 200)
    for f in (0.0, 0.01, 0.05, 0.3):
        t = m.far_threshold(neg, pos, f)
        far, _ = m.farfrr(neg, pos, t)
        assert far <= f
        lower = np.sort(neg)[np.sort(neg) < t]
        if lower.size:     # the next lower attack score would exceed the target
            assert m.farfrr(neg, pos, lower[-1])[0] > f


def test_tpr_at_fpr_hand_case():
    # attacks 0.1..1.0 (10), genuine 0.55, 0.75, 0.95, 0.99: FPR 10 % -> t = 1.0 (one
    # attack at 1.0 accepted), no genuine >= 1.0: TPR 0; FPR 30 % -> t = 0.8: TPR 2/4.
    neg = np.round(np.arange(1, 11) / 10, 2)
    pos = [0.55, 0.75, 0.95, 0.99]
    assert m.tpr_at_fpr(neg, pos, 0.1) == 0.0
    assert m.tpr_at_fpr(neg, pos, 0.3) == 0.5
    assert m.tpr_at_fpr(neg, pos, 1.0) == 1.0


def test_auc_equals_sklearn_exact_value_on_iris_and_ties():
    X, y = load_iris(return_X_y=True)
    for feat, a, b in ((0, 0, 1), (1, 1, 2), (3, 1, 2)):
        neg, pos = X[y == a, feat], X[y == b, feat]
        want = roc_auc_score(np.r_[np.zeros(neg.size), np.ones(pos.size)], np.r_[neg, pos])
        assert m.auc(neg, pos) == pytest.approx(want, abs=1e-12)
    rng = np.random.default_rng(0)
    neg, pos = rng.integers(0, 5, 80).astype(float), rng.integers(1, 6, 60).astype(float)
    want = roc_auc_score(np.r_[np.zeros(80), np.ones(60)], np.r_[neg, pos])
    assert m.auc(neg, pos) == pytest.approx(want, abs=1e-12)
    # hand case: pos [0.4, 0.9] vs neg [0.1, 0.4]: pairs 0.4>0.1, 0.4=0.4 (1/2), 0.9>both
    assert m.auc([0.1, 0.4], [0.4, 0.9]) == 0.875
    assert m.auc([0.9], [0.1]) == 0.0


def test_epc_follows_bobs_definition():
    X, y = load_iris(return_X_y=True)
    neg, pos = X[y == 1, 2], X[y == 2, 2]            # petal length: overlapping classes
    dn, tn, dp, tp = neg[::2], neg[1::2], pos[::2], pos[1::2]
    a, h, t = m.epc(dn, dp, tn, tp, 11)
    assert np.allclose(a, np.linspace(0, 1, 11))
    assert t[5] == m.min_hter_threshold(dn, dp)                 # cost 0.5
    for ai, hi, ti in zip(a, h, t):
        assert ti == m.min_weighted_error_rate_threshold(dn, dp, ai)
        assert hi == m.hter(tn, tp, ti)
    # cost 0 weighs only FRR: no genuine development score is rejected
    assert m.farfrr(dn, dp, t[0])[1] == 0.0
    # cost 1 weighs only FAR: no attack development score is accepted
    assert m.farfrr(dn, dp, t[-1])[0] == 0.0
    with pytest.raises(ValueError, match="cost"):
        m.min_weighted_error_rate_threshold(dn, dp, 1.5)
