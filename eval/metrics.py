"""Error rates with bob.measure's names and semantics, plain numpy.

Conventions, the same as bob.measure:

* ``negatives`` are attack (presentation attack) scores, ``positives`` genuine
  (bona fide) scores; a higher score means "more genuine" (our score is p(y=1|x)).
* A score ``>= threshold`` is accepted as genuine. FAR = attacks accepted / attacks
  (an attack exactly at the threshold is a false accept); FRR = genuine rejected /
  genuine.
* ``eer_threshold`` walks the merged sorted scores. Its candidate thresholds are
  min(scores), then the midpoint between each pair of consecutive distinct scores,
  and just above max(scores). It picks the candidate that minimises |FAR - FRR|;
  among equal values the larger threshold wins, with bob's two edge rules kept
  exactly: (1) bob stops its walk at the first candidate where one class has no
  score left above the threshold, and that candidate replaces the best so far only
  if *strictly* better; (2) the "just above max" candidate (FAR 0, FRR 1) also needs
  to be strictly better, so it never wins for the EER. FAR and FRR inside the walk
  are accumulated the way bob does (1.0 minus 1/N once per sample), so even float
  ties break as they do in bob. ``eer`` then evaluates FAR and FRR at that threshold
  with exact counts, as bob's ``eer`` does.
* ``min_hter_threshold`` is the same walk minimising (FAR + FRR) / 2.

NaN scores are failures to acquire (FTA): every function here drops them, counts them
and warns with :class:`FailureToAcquireWarning`; :func:`scored` (:func:`is_scored`, as a
mask) gives the scored samples, for every filter in eval/; use :func:`count_fta` or
:func:`split_fta` to report the FTA. As in bob.measure's metrics command and the paper
("simply remove the bad faces"), HTER is over the scored samples; :func:`rates_with_fta`
gives bob's one pooled FTA rate and its FAR = FMR (1 - FTA), FRR = FTA + FNMR (1 - FTA)
to report beside it. A class that is empty (after dropping NaNs) raises
:class:`ValueError` naming the class.

Cost: each threshold search sorts each class once (O(n log n)) and is otherwise
vectorised; ``python -m eval.bench_metrics`` times it on a million scores.
"""
from __future__ import annotations

import warnings
from typing import Mapping, NamedTuple, Sequence

import numpy as np


class FailureToAcquireWarning(UserWarning):
    """Some scores were NaN (no face, no sample): counted as failures to acquire."""


def is_scored(scores) -> np.ndarray:
    """True where a sample was scored, False where its score is NaN (a failure to
    acquire); the shape of ``scores``. The one rule of eval/ for which samples count:
    :func:`scored`, :func:`split_fta` and :func:`count_fta` all apply it."""
    return ~np.isnan(np.asarray(scores, dtype=np.float64))


def scored(scores) -> np.ndarray:
    """The scored samples: ``scores`` as float64, flattened, without the NaN scores
    (failures to acquire), in their order; always a new array."""
    a = np.asarray(scores, dtype=np.float64).ravel()
    return a[is_scored(a)]


def split_fta(scores) -> tuple[np.ndarray, int]:
    """Return (the non-NaN scores as float64, the number of NaN scores)."""
    a = np.asarray(scores, dtype=np.float64).ravel()
    ok = is_scored(a)
    n = a.size - int(np.count_nonzero(ok))
    return (a[ok] if n else a), n


def count_fta(scores) -> int:
    """Number of failures to acquire (NaN scores)."""
    return int(np.count_nonzero(~is_scored(scores)))


def _clean(scores, name: str) -> np.ndarray:
    a, n = split_fta(scores)
    if n:
        warnings.warn(f"{n} NaN score(s) among the {name} were dropped and count as "
                      f"failures to acquire", FailureToAcquireWarning, stacklevel=3)
    if a.size == 0:
        raise ValueError(f"no {name} scores (after dropping {n} NaN): the error rate "
                         f"is undefined for an empty class")
    return a


def farfrr(negatives, positives, threshold: float) -> tuple[float, float]:
    """(FAR, FRR) at ``threshold``: attacks with score >= threshold are false accepts,
    genuine scores < threshold are false rejects."""
    neg = _clean(negatives, "negatives (attack)")
    pos = _clean(positives, "positives (genuine)")
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    return (float(np.count_nonzero(neg >= threshold)) / neg.size,
            float(np.count_nonzero(pos < threshold)) / pos.size)


class FtaRates(NamedTuple):
    """bob.measure's metrics with failures to acquire (``bob/measure/script/figure.py``,
    ``Metrics._numbers`` with ``utils.get_fta``)."""
    fta: float    # one rate over both classes: NaN scores / all scores
    fmr: float    # attacks accepted / scored attacks
    fnmr: float   # genuine rejected / scored genuine
    hter: float   # (FMR + FNMR) / 2: the scored samples only, FTA left out
    far: float    # FMR (1 - FTA)
    frr: float    # FTA + FNMR (1 - FTA)


def fta_rate(negatives, positives) -> float:
    """bob.measure's FTA (``utils.get_fta``): one rate pooled over both classes, the NaN
    scores of negatives and positives together over all their scores."""
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    pos = np.asarray(positives, dtype=np.float64).ravel()
    n = neg.size + pos.size
    if n == 0:
        raise ValueError("no scores: the failure-to-acquire rate is undefined")
    return float(count_fta(neg) + count_fta(pos)) / n


def rates_with_fta(negatives, positives, threshold: float) -> FtaRates:
    """FTA, FMR, FNMR, HTER, FAR and FRR at ``threshold`` as bob.measure's metrics command
    reports them: FMR and FNMR (and so HTER) over the scored samples, with FAR = FMR (1 -
    FTA) and FRR = FTA + FNMR (1 - FTA) beside them, FTA being the one pooled rate of
    :func:`fta_rate`. Without NaN, FAR = FMR and FRR = FNMR."""
    fta = fta_rate(negatives, positives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailureToAcquireWarning)
        fmr, fnmr = farfrr(negatives, positives, threshold)
    return FtaRates(fta, fmr, fnmr, (fmr + fnmr) / 2.0, fmr * (1 - fta), fta + fnmr * (1 - fta))


def hter(negatives, positives, threshold: float) -> float:
    """Half total error rate (FAR + FRR) / 2 at a given (e.g. validation) threshold."""
    far, frr = farfrr(negatives, positives, threshold)
    return (far + frr) / 2.0


def _walk(neg: np.ndarray, pos: np.ndarray):
    """Candidate thresholds of bob's walk and the accumulated (FAR, FRR) at each.

    Returns (thresholds, far, frr, n_inside): candidates 0..n_inside-1 are compared
    with "<=" (later wins ties), candidate n_inside with "<"; later ones bob never
    evaluates (they cannot be better, see the module docstring).
    """
    neg = np.sort(neg)
    pos = np.sort(pos)
    u = np.unique(np.concatenate((neg, pos)))          # distinct values v_1 < ... < v_m
    m = u.size
    # after consuming v_1..v_j (j = 1..m): how many negatives / positives are <= v_j
    cn = np.concatenate(([0], np.searchsorted(neg, u, side="right")))
    cp = np.concatenate(([0], np.searchsorted(pos, u, side="right")))
    # bob keeps FAR and FRR as running sums: 1.0 - 1/Nn - 1/Nn ..., 0.0 + 1/Np + ...
    far_acc = np.add.accumulate(np.concatenate(([1.0], np.full(neg.size, -1.0 / neg.size))))
    frr_acc = np.add.accumulate(np.concatenate(([0.0], np.full(pos.size, 1.0 / pos.size))))
    far = far_acc[cn]
    frr = frr_acc[cp]
    thr = np.empty(m + 1)
    thr[0] = u[0]
    thr[1:m] = (u[:-1] + u[1:]) / 2.0
    thr[m] = u[-1]  # bob leaves the threshold at the last score when both lists end together
    exhausted = (cn == neg.size) | (cp == pos.size)
    n_inside = int(np.argmax(exhausted))  # exists: candidate m consumes everything
    return thr, far, frr, n_inside, u[-1], neg, pos


def _minimizing_threshold(negatives, positives, criterion) -> float:
    neg = _clean(negatives, "negatives (attack)")
    pos = _clean(positives, "positives (genuine)")
    thr, far, frr, k, vmax, _, _ = _walk(neg, pos)
    pred = criterion(far[:k + 1], frr[:k + 1])
    inside = pred[:k]
    best = k - 1 - int(np.argmin(inside[::-1]))          # "<=": the last minimum wins
    if pred[k] < inside[best]:                           # "<" for the first exhausted one
        best = k
    best_pred, best_thr = pred[best], thr[best]
    if k < thr.size - 1:  # one list still had scores: try just above max, FAR 0, FRR 1
        above = criterion(np.array([0.0]), np.array([1.0]))[0]
        if above < best_pred:
            best_thr = np.nextafter(vmax, np.inf)
    return float(best_thr)


def eer_threshold(negatives, positives) -> float:
    """Threshold where FAR and FRR are closest (bob.measure.eer_threshold)."""
    return _minimizing_threshold(negatives, positives, lambda a, r: np.abs(a - r))


def min_hter_threshold(negatives, positives) -> float:
    """Threshold minimising (FAR + FRR) / 2 (bob.measure.min_hter_threshold)."""
    return _minimizing_threshold(negatives, positives, lambda a, r: 0.5 * a + 0.5 * r)


def eer(negatives, positives, also_farfrr: bool = False):
    """(FAR + FRR) / 2 at :func:`eer_threshold` (bob.measure.eer).

    With ``also_farfrr`` returns (eer, far, frr)."""
    neg = _clean(negatives, "negatives (attack)")
    pos = _clean(positives, "positives (genuine)")
    t = eer_threshold(neg, pos)
    far, frr = farfrr(neg, pos, t)
    e = (far + frr) / 2.0
    return (e, far, frr) if also_farfrr else e


class PadErrors(NamedTuple):
    """ISO/IEC 30107-3 rates at one threshold."""
    apcer_by_type: dict        # PAI species -> APCER
    apcer: float               # max over species (ISO/IEC 30107-3)
    bpcer: float               # = FRR
    acer: float                # (max APCER + BPCER) / 2
    fta_by_type: dict          # PAI species -> NaN count
    fta_genuine: int


def apcer_bpcer(attack_scores_by_type: Mapping[str, Sequence[float]], genuine_scores,
                threshold: float) -> PadErrors:
    """APCER per attack type, max APCER, BPCER and ACER at ``threshold``.

    APCER(type) = attacks of that type with score >= threshold / scored attacks of that
    type; BPCER = genuine with score < threshold / scored genuine. NaNs (failures to
    acquire) are left out of the rates, as in HTER, and counted per type."""
    if not attack_scores_by_type:
        raise ValueError("no attack types given")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailureToAcquireWarning)
        fta = {k: count_fta(v) for k, v in attack_scores_by_type.items()}
        fta_g = count_fta(genuine_scores)
        per = {}
        bpcer = None
        for k, v in attack_scores_by_type.items():
            per[k], bpcer = farfrr(_clean_named(v, f"attack '{k}'"),
                                   _clean_named(genuine_scores, "genuine"), threshold)
    apcer = max(per.values())
    return PadErrors(per, apcer, bpcer, (apcer + bpcer) / 2.0, fta, fta_g)


def _clean_named(scores, name):
    a, n = split_fta(scores)
    if a.size == 0:
        raise ValueError(f"no {name} scores (after dropping {n} NaN)")
    return a


def roc(negatives, positives, n_points: int | None = None, return_thresholds=False):
    """ROC points as bob returns them: row 0 FAR, row 1 FRR, one column per threshold.

    The thresholds are the candidates of :func:`eer_threshold` (every distinct
    operating point, min(scores) first, just-above-max last), so the curve is exact;
    ``n_points`` keeps that many of them, evenly spaced in index."""
    neg = np.sort(_clean(negatives, "negatives (attack)"))
    pos = np.sort(_clean(positives, "positives (genuine)"))
    u = np.unique(np.concatenate((neg, pos)))
    thr = np.concatenate(([u[0]], (u[:-1] + u[1:]) / 2.0, [np.nextafter(u[-1], np.inf)]))
    if n_points is not None and n_points < thr.size:
        thr = thr[np.unique(np.linspace(0, thr.size - 1, max(n_points, 2)).round().astype(int))]
    far = (neg.size - np.searchsorted(neg, thr, side="left")) / neg.size
    frr = np.searchsorted(pos, thr, side="left") / pos.size
    curve = np.vstack((far, frr))
    return (curve, thr) if return_thresholds else curve


def ppndf(p):
    """Normal deviate of a probability (NIST DETware's ppndf), the DET axis scale."""
    p = np.clip(np.asarray(p, dtype=np.float64), np.finfo(float).eps, 1 - np.finfo(float).eps)
    q = p - 0.5
    out = np.empty_like(p)
    c = np.abs(q) <= 0.42
    r = q[c] ** 2
    out[c] = q[c] * (((-25.44106049637 * r + 41.39119773534) * r - 18.61500062529) * r
                     + 2.50662823884) / ((((3.13082909833 * r - 21.06224101826) * r
                                          + 23.08336743743) * r - 8.47351093090) * r + 1.0)
    t = ~c
    rr = np.where(q[t] > 0, 1.0 - p[t], p[t])
    rr = np.sqrt(-np.log(rr))
    v = (((2.32121276858 * rr + 4.85014127135) * rr - 2.29796479134) * rr
         - 2.78718931138) / ((1.63706781897 * rr + 3.54388924762) * rr + 1.0)
    out[t] = np.where(q[t] < 0, -v, v)
    return out


def det(negatives, positives, n_points: int | None = None):
    """DET points: :func:`roc` mapped through :func:`ppndf` (row 0 FAR, row 1 FRR)."""
    return ppndf(roc(negatives, positives, n_points))


def hter_curve(negatives, positives, thresholds) -> np.ndarray:
    """HTER at each of many thresholds (Figure 6), vectorised with one sort per class."""
    neg = np.sort(_clean(negatives, "negatives (attack)"))
    pos = np.sort(_clean(positives, "positives (genuine)"))
    t = np.asarray(thresholds, dtype=np.float64)
    far = (neg.size - np.searchsorted(neg, t, side="left")) / neg.size
    frr = np.searchsorted(pos, t, side="left") / pos.size
    return (far + frr) / 2.0


# ---------------------------------------------------------------- cross-dataset metrics
def min_weighted_error_rate_threshold(negatives, positives, cost: float) -> float:
    """Threshold minimising cost FAR + (1 - cost) FRR, by the walk of :func:`eer_threshold`
    (bob.measure.min_weighted_error_rate_threshold); cost 0.5 is :func:`min_hter_threshold`."""
    if not 0.0 <= cost <= 1.0:
        raise ValueError(f"cost must be in [0, 1], got {cost}")
    return _minimizing_threshold(negatives, positives,
                                 lambda a, r: cost * a + (1.0 - cost) * r)


def far_threshold(negatives, positives, far_value: float = 0.001) -> float:
    """The threshold whose FAR is at most ``far_value``, as low as that allows
    (bob.measure.far_threshold): the smallest attack score t with (attacks >= t) / attacks
    <= far_value; just above the largest attack score when even that one is too many;
    just below the smallest when ``far_value`` is 1. ``positives`` is not used (bob's
    signature). At least two attack scores are needed, as in bob."""
    if not 0.0 <= far_value <= 1.0:
        raise ValueError(f"far_value must be in [0, 1], got {far_value}")
    neg = np.sort(_clean(negatives, "negatives (attack)"))
    if neg.size < 2:
        raise ValueError("far_threshold needs at least 2 attack scores")
    if far_value >= 1 - np.finfo(np.float64).eps:
        return float(np.nextafter(neg[0], -np.inf))
    u = np.unique(neg)
    far_at = (neg.size - np.searchsorted(neg, u, side="left")) / neg.size   # FAR at t = u
    ok = far_at <= far_value
    if not ok.any():
        return float(np.nextafter(neg[-1], np.inf))
    return float(u[int(np.argmax(ok))])      # far_at falls with u: the first ok is the lowest


def tpr_at_fpr(negatives, positives, fpr: float = 0.01) -> float:
    """TPR (genuine accepted) at the :func:`far_threshold` of ``fpr`` (FLIP's TPR@FPR)."""
    t = far_threshold(negatives, positives, fpr)
    _, frr = farfrr(negatives, positives, t)
    return 1.0 - frr


def auc(negatives, positives) -> float:
    """Area under the ROC curve, exact: P(genuine score > attack score) + P(tie) / 2, the
    Mann-Whitney statistic, which is what scikit-learn's roc_auc_score computes.
    bob.measure.roc_auc_score integrates its 2000-point ROC by trapezoids and checks
    itself against that exact value (bob's test: 0.9326 on its non-separable set)."""
    neg = np.sort(_clean(negatives, "negatives (attack)"))
    pos = _clean(positives, "positives (genuine)")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (neg.size * pos.size))


def epc(dev_negatives, dev_positives, test_negatives, test_positives, n_points: int = 100):
    """Expected performance curve (bob.measure.epc): for each cost alpha in
    linspace(0, 1, n_points), the threshold minimising alpha FAR + (1 - alpha) FRR on the
    development scores, and the test HTER at it. Returns rows (alpha, HTER, threshold)."""
    alpha = np.linspace(0.0, 1.0, int(n_points))
    dn = _clean(dev_negatives, "development negatives (attack)")
    dp = _clean(dev_positives, "development positives (genuine)")
    thr = np.array([min_weighted_error_rate_threshold(dn, dp, a) for a in alpha])
    hters = np.array([hter(test_negatives, test_positives, t) for t in thr])
    return np.vstack((alpha, hters, thr))
