"""eval.metrics against bob.measure's public check values, hand-worked cases and properties."""
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.datasets import load_iris

from eval import metrics as m
from eval.bootstrap import subject_bootstrap


# ---------------------------------------------------------------- check values from bob.measure's own tests (iris data)

def _iris(feature, neg_class, pos_class):
    X, y = load_iris(return_X_y=True)
    return X[y == neg_class, feature], X[y == pos_class, feature]


def test_iris_sepal_setosa_vs_versicolor():
    neg, pos = _iris(0, 0, 1)
    t = m.eer_threshold(neg, pos)
    assert t == pytest.approx(5.45, abs=1e-12)
    far, frr = m.farfrr(neg, pos, t)
    assert far == pytest.approx(0.10) and frr == pytest.approx(0.12)
    assert m.eer(neg, pos) == pytest.approx(0.11)


def test_iris_petal_setosa_vs_virginica():
    neg, pos = _iris(2, 0, 2)
    assert m.eer_threshold(neg, pos) == pytest.approx(3.2, abs=1e-12)
    assert m.eer(neg, pos) == 0.0


# ---------------------------------------------------------------- hand-worked cases

def test_attack_at_threshold_is_false_accept():
    # neg [0.2, 0.5, 0.5], pos [0.5, 0.8], threshold 0.5: both 0.5 attacks are >= 0.5 and
    # accepted (FAR 2/3); the genuine 0.5 is accepted too (FRR 0).
    assert m.farfrr([0.2, 0.5, 0.5], [0.5, 0.8], 0.5) == (pytest.approx(2 / 3), 0.0)


def test_eer_with_tied_scores_across_classes():
    # neg [0.2, 0.5, 0.5], pos [0.5, 0.8]; distinct scores 0.2, 0.5, 0.8. Candidates:
    #   0.2  FAR 1   FRR 0   |d| 1
    #   0.35 FAR 2/3 FRR 0   |d| 2/3
    #   0.65 FAR 0   FRR 1/2 |d| 1/2  (0.5 holds two attacks and one genuine; attacks used up)
    # so the threshold is 0.65 and EER = (0 + 1/2) / 2 = 1/4.
    neg, pos = [0.2, 0.5, 0.5], [0.5, 0.8]
    assert m.eer_threshold(neg, pos) == pytest.approx(0.65)
    assert m.eer(neg, pos, also_farfrr=True) == (pytest.approx(0.25), 0.0, 0.5)


def test_equal_minimum_goes_to_larger_threshold():
    # neg [0.2, 0.3, 0.4, 0.5], pos [0.1, 0.4, 0.7, 0.8] (sizes 4: all rates exact in binary):
    #   0.1  (1, 0) 1 | 0.15 (1, .25) .75 | 0.25 (.75, .25) .5 | 0.35 (.5, .25) .25
    #   0.45 (.25, .5) .25  <- equal to 0.35; both classes still have scores above: larger wins
    #   0.6  (0, .5) .5 (attacks used up)
    # EER at 0.45 = (.25 + .5) / 2 = .375 (at 0.35 it would be .375 too, but FAR/FRR differ).
    neg, pos = [0.2, 0.3, 0.4, 0.5], [0.1, 0.4, 0.7, 0.8]
    assert m.eer_threshold(neg, pos) == (0.4 + 0.5) / 2
    assert m.eer(neg, pos, also_farfrr=True) == (0.375, 0.25, 0.5)


def test_first_exhausted_candidate_must_be_strictly_better():
    # neg [0.1, 0.6, 0.7, 0.8], pos [0.2, 0.3, 0.5, 0.5]:
    #   0.1 (1,0) 1 | 0.15 (.75,0) .75 | 0.25 (.75,.25) .5 | 0.4 (.75,.5) .25
    #   0.55 (.75, 1) .25: genuine used up; bob compares it with "<", so 0.4 stays.
    # EER at 0.4 = (.75 + .5) / 2 = .625 (a plain "ties go up" rule would give 0.55, .875).
    neg, pos = [0.1, 0.6, 0.7, 0.8], [0.2, 0.3, 0.5, 0.5]
    assert m.eer_threshold(neg, pos) == (0.3 + 0.5) / 2
    assert m.eer(neg, pos) == 0.625


def test_all_equal_scores():
    # every score 0.5: candidate 0.5 gives FAR 1, FRR 0 (|d| 1); the only other is above all
    # scores, FAR 0, FRR 1 (|d| 1), which bob takes only if strictly better: threshold 0.5,
    # EER = (1 + 0) / 2 = 0.5.
    neg, pos = [0.5] * 3, [0.5] * 2
    assert m.eer_threshold(neg, pos) == 0.5
    assert m.eer(neg, pos) == 0.5
    assert m.min_hter_threshold(neg, pos) == 0.5


def test_inverted_scores():
    # genuine below attacks: neg [0.8, 0.9], pos [0.1, 0.2].
    #   0.1 (1, 0) 1 | 0.15 (1, .5) .5 | 0.5 (1, 1) 0 (genuine used up, strictly better)
    # threshold 0.5, FAR = FRR = 1, EER = 1.
    neg, pos = [0.8, 0.9], [0.1, 0.2]
    assert m.eer_threshold(neg, pos) == 0.5
    assert m.eer(neg, pos) == 1.0
    assert m.hter(neg, pos, 0.5) == 1.0


def test_min_hter_threshold_hand_case():
    # neg [0.1, 0.2, 0.3, 0.6], pos [0.5, 0.7, 0.8, 0.9]; (FAR + FRR) / 2 per candidate:
    #   0.1 .5 | 0.15 .375 | 0.25 .25 | 0.4 .125 | 0.55 (.25,.25) .25 | 0.65 (0,.25) .125
    # 0.65 uses up the attacks and is only equal, not better: min-HTER threshold 0.4.
    # The EER threshold differs: |FAR - FRR| is 0 at 0.55.
    neg, pos = [0.1, 0.2, 0.3, 0.6], [0.5, 0.7, 0.8, 0.9]
    assert m.min_hter_threshold(neg, pos) == (0.3 + 0.5) / 2
    assert m.hter(neg, pos, 0.4) == 0.125
    assert m.eer_threshold(neg, pos) == (0.5 + 0.6) / 2


def test_nan_scores_are_failures_to_acquire():
    # NaNs are dropped and counted: the result equals the NaN-free one, with a warning.
    neg, pos = [0.1, float("nan"), 0.3], [0.7, float("nan"), float("nan")]
    assert m.count_fta(neg) == 1 and m.count_fta(pos) == 2
    with pytest.warns(m.FailureToAcquireWarning) as caught:
        t = m.eer_threshold(neg, pos)
    assert sorted(str(w.message)[:5] for w in caught) == ["1 NaN", "2 NaN"]
    # clean neg [0.1, 0.3], pos [0.7]: attacks used up at (0.3 + 0.7) / 2 = 0.5, FAR = FRR = 0.
    assert t == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", m.FailureToAcquireWarning)
        assert m.eer(neg, pos) == 0.0
    with pytest.raises(ValueError, match="threshold is NaN"):
        m.farfrr([0.1], [0.9], float("nan"))


def test_scored_samples_leave_out_nan_in_order():
    x = np.array([[0.4, float("nan")], [0.0, 1.0]])
    np.testing.assert_array_equal(m.is_scored(x), [[True, False], [True, True]])
    out = m.scored(x)
    assert out.dtype == np.float64 and out.tolist() == [0.4, 0.0, 1.0]
    clean = np.array([0.2, 0.1])
    assert m.scored(clean) is not clean and m.scored(clean).tolist() == [0.2, 0.1]
    assert m.scored([float("nan")]).size == 0 and m.count_fta(x) == 1


def test_empty_class_raises():
    with pytest.raises(ValueError, match="no positives"):
        m.eer([0.1, 0.2], [])
    with pytest.warns(m.FailureToAcquireWarning), pytest.raises(ValueError, match="no negatives"):
        m.eer_threshold([float("nan")], [0.5])
    with pytest.raises(ValueError, match="genuine"):
        m.apcer_bpcer({"cut": [0.1]}, [], 0.5)


def test_apcer_bpcer_hand_case():
    # threshold 0.5: warped [0.1, 0.6] -> 1 of 2 accepted; cut [0.2, 0.3, 0.4, 0.9] -> 1 of 4;
    # video [0.7, 0.8] -> 2 of 2. APCER = max = 1. Genuine [0.4, 0.6, 0.9, 0.95]: 0.4 rejected,
    # BPCER 1/4. ACER = (1 + 1/4) / 2 = 0.625.
    r = m.apcer_bpcer({"warped": [0.1, 0.6], "cut": [0.2, 0.3, 0.4, 0.9], "video": [0.7, 0.8]},
                      [0.4, 0.6, 0.9, 0.95], 0.5)
    assert r.apcer_by_type == {"warped": 0.5, "cut": 0.25, "video": 1.0}
    assert (r.apcer, r.bpcer, r.acer) == (1.0, 0.25, 0.625)
    r = m.apcer_bpcer({"cut": [0.1, float("nan")]}, [0.9], 0.5)
    assert r.fta_by_type == {"cut": 1} and r.apcer == 0.0


def test_roc_and_det_points():
    neg, pos = [0.2, 0.5, 0.5], [0.5, 0.8]
    curve, thr = m.roc(neg, pos, return_thresholds=True)
    # thresholds 0.2, 0.35, 0.65, just above 0.8
    np.testing.assert_allclose(thr[:3], [0.2, 0.35, 0.65])
    assert thr[3] > 0.8
    np.testing.assert_allclose(curve, [[1, 2 / 3, 0, 0], [0, 0, 0.5, 1]])
    assert m.roc(neg, pos, n_points=2).shape == (2, 2)
    np.testing.assert_allclose(m.ppndf([0.5, 0.975, 0.025]), [0, 1.95996, -1.95996], atol=1e-4)
    np.testing.assert_allclose(m.det(neg, pos), m.ppndf(curve))


# ---------------------------------------------------------------- properties

scores = st.lists(st.integers(0, 12).map(lambda v: v / 4), min_size=1, max_size=30)


def _candidates(neg, pos):
    u = np.unique(np.concatenate([neg, pos]))
    return np.concatenate(([u[0]], (u[:-1] + u[1:]) / 2, [np.nextafter(u[-1], np.inf)]))


@settings(max_examples=300, deadline=None)
@given(scores, scores)
def test_eer_threshold_no_worse_than_any_candidate(neg, pos):
    t = m.eer_threshold(neg, pos)
    far, frr = m.farfrr(neg, pos, t)
    best = min(abs(a - r) for a, r in (m.farfrr(neg, pos, c) for c in _candidates(neg, pos)))
    assert abs(far - frr) <= best + 1e-12


def _oracle(neg, pos, crit):
    """The rules of the module docstring, with exact fractions, candidate by candidate."""
    neg, pos = sorted(neg), sorted(pos)
    u = sorted(set(neg) | set(pos))
    cands = [(u[0], 0, 0)]
    for j, v in enumerate(u):
        cn = sum(x <= v for x in neg)
        cp = sum(x <= v for x in pos)
        cands.append(((v + u[j + 1]) / 2 if j + 1 < len(u) else v, cn, cp))
    best_val, best_t = None, None
    for t, cn, cp in cands:
        val = crit(1 - Fraction(cn, len(neg)), Fraction(cp, len(pos)))
        exhausted = cn == len(neg) or cp == len(pos)
        if best_val is None or (val < best_val if exhausted else val <= best_val):
            best_val, best_t = val, t
        if exhausted:
            break
    return best_t


pow2 = st.sampled_from([1, 2, 4, 8, 16])  # class sizes whose rates are exact in binary


@settings(max_examples=300, deadline=None)
@given(pow2, pow2, st.data())
def test_threshold_search_matches_exact_oracle(nn, np_, data):
    neg = data.draw(st.lists(st.integers(0, 8), min_size=nn, max_size=nn))
    pos = data.draw(st.lists(st.integers(0, 8), min_size=np_, max_size=np_))
    neg = [float(v) for v in neg]
    pos = [float(v) for v in pos]
    assert m.eer_threshold(neg, pos) == _oracle(neg, pos, lambda a, r: abs(a - r))
    assert m.min_hter_threshold(neg, pos) == _oracle(neg, pos, lambda a, r: a + r)


@settings(max_examples=100, deadline=None)
@given(scores, scores)
def test_hter_curve_matches_farfrr(neg, pos):
    ts = np.linspace(-0.5, 3.5, 17)
    expect = [sum(m.farfrr(neg, pos, t)) / 2 for t in ts]
    np.testing.assert_allclose(m.hter_curve(neg, pos, ts), expect)


# ---------------------------------------------------------------- bootstrap

def _subjects(n_subjects, seed, per=40):
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects), per)
    lab = np.tile(np.r_[np.ones(per // 4), np.zeros(per - per // 4)], n_subjects).astype(int)
    off = rng.normal(0, 0.7, n_subjects)[subj]
    sc = np.where(lab == 1, 1.5, -1.5) + off + rng.normal(0, 1, subj.size)
    return subj, lab, sc


def test_bootstrap_point_estimates_match_metrics():
    subj, lab, sc = _subjects(20, 0)
    r = subject_bootstrap(subj, lab, sc, 0.1, n_resamples=50, seed=3)
    assert r.hter.point == pytest.approx(m.hter(sc[lab == 0], sc[lab == 1], 0.1))
    assert r.eer.point == pytest.approx(m.eer(sc[lab == 0], sc[lab == 1]))
    assert r.hter.lo <= r.hter.point <= r.hter.hi
    assert r.eer.lo <= r.eer.point <= r.eer.hi


def test_bootstrap_reproducible_under_seed():
    subj, lab, sc = _subjects(15, 1)
    a = subject_bootstrap(subj, lab, sc, 0.0, n_resamples=200, seed=7)
    b = subject_bootstrap(subj, lab, sc, 0.0, n_resamples=200, seed=7)
    c = subject_bootstrap(subj, lab, sc, 0.0, n_resamples=200, seed=8)
    assert a == b
    assert a != c


def test_bootstrap_interval_narrows_with_more_subjects():
    widths = []
    for n in (8, 32, 128):
        subj, lab, sc = _subjects(n, 2)
        r = subject_bootstrap(subj, lab, sc, 0.0, n_resamples=400, seed=5)
        widths.append((r.hter.hi - r.hter.lo, r.eer.hi - r.eer.lo))
    for (h1, e1), (h2, e2) in zip(widths, widths[1:]):
        assert h2 < h1 and e2 < e1


def test_bootstrap_resamples_subjects_not_samples():
    # one subject holds all genuine samples far from the rest: resampling subjects must
    # sometimes drop it entirely (degenerate resample, no genuine), sampling rows never would.
    subj = np.r_[np.zeros(10), np.arange(1, 11).repeat(5)].astype(int)
    lab = np.r_[np.ones(10), np.zeros(50)].astype(int)
    sc = np.r_[np.full(10, 0.9), np.linspace(0, 0.5, 50)]
    r = subject_bootstrap(subj, lab, sc, 0.6, n_resamples=300, seed=0)
    assert r.n_degenerate > 0
    assert r.hter.point == 0.0 and not math.isnan(r.hter.hi)
