"""95 % confidence intervals for HTER and EER by a bootstrap over *subjects*.

Samples of one subject (its 12 videos, its many overlapping clips) are not
independent, so a resample draws whole subjects with replacement (as many as there
are) and keeps every sample of each drawn subject, as often as it was drawn. Each
resample is scored with the statistic of the point estimate:

* HTER at the fixed validation threshold (the threshold is not re-estimated: the
  interval is the test-set sampling uncertainty of the reported number);
* EER: the candidate minimising |FAR - FRR| (ties: the larger threshold), then
  (FAR + FRR) / 2 there, computed from weighted counts so that thousands of
  resamples cost one matrix product each; with every weight 1 it equals
  :func:`eval.metrics.eer` on untied scores.

The interval is the percentile interval of the resampled statistics. It is a
function of (scores, subjects, n_resamples, seed) only. NaN scores are failures to
acquire: both statistics leave them out, as the point estimates do (``eval.metrics``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from data_prep.casia import GENUINE
from eval import metrics


class Interval(NamedTuple):
    point: float
    lo: float
    hi: float


class BootstrapResult(NamedTuple):
    hter: Interval
    eer: Interval
    n_subjects: int
    n_resamples: int
    n_degenerate: int   # resamples without a genuine or without an attack sample


def _draw_weights(n_subjects: int, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_subjects, size=(n_resamples, n_subjects))
    w = np.zeros((n_resamples, n_subjects))
    np.add.at(w, (np.repeat(np.arange(n_resamples), n_subjects), idx.ravel()), 1.0)
    return w


def _weighted_eer(w: np.ndarray, cn: np.ndarray, cp: np.ndarray,
                  nn: np.ndarray, np_: np.ndarray) -> np.ndarray:
    """EER per row of subject weights ``w`` (b x S); cn/cp: S x m cumulative counts."""
    tot_n = w @ nn
    tot_p = w @ np_
    with np.errstate(invalid="ignore", divide="ignore"):
        far = 1.0 - (w @ cn) / tot_n[:, None]
        frr = (w @ cp) / tot_p[:, None]
    far = np.concatenate((np.ones((w.shape[0], 1)), far), axis=1)
    frr = np.concatenate((np.zeros((w.shape[0], 1)), frr), axis=1)
    pred = np.abs(far - frr)
    last = pred.shape[1] - 1 - np.argmin(pred[:, ::-1], axis=1)   # ties: larger threshold
    rows = np.arange(w.shape[0])
    out = (far[rows, last] + frr[rows, last]) / 2.0
    out[(tot_n == 0) | (tot_p == 0)] = np.nan
    return out


def _prepare(subjects, labels, scores):
    subjects = np.asarray(subjects)
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    subj, s_all = np.unique(subjects, return_inverse=True)
    ok = metrics.is_scored(scores)
    s_idx, labels, scores = s_all[ok], labels[ok], scores[ok]
    u, v_idx = np.unique(scores, return_inverse=True)
    genuine = labels == GENUINE
    cn = np.zeros((subj.size, u.size))
    cp = np.zeros((subj.size, u.size))
    np.add.at(cn, (s_idx[~genuine], v_idx[~genuine]), 1.0)
    np.add.at(cp, (s_idx[genuine], v_idx[genuine]), 1.0)
    return subj, s_idx, genuine, scores, cn, cp


def subject_bootstrap(subjects, labels, scores, threshold: float, n_resamples: int = 1000,
                      ci_level: float = 0.95, seed: int = 0) -> BootstrapResult:
    """Point estimates and percentile intervals of HTER(threshold) and EER."""
    subj, s_idx, genuine, scores, cnt_n, cnt_p = _prepare(subjects, labels, scores)
    if not genuine.any() or genuine.all():
        raise ValueError("the bootstrap needs both genuine and attack scores")
    S = subj.size
    nn, np_ = cnt_n.sum(axis=1), cnt_p.sum(axis=1)
    fa = np.bincount(s_idx[~genuine], weights=(scores[~genuine] >= threshold).astype(float),
                     minlength=S)
    fr = np.bincount(s_idx[genuine], weights=(scores[genuine] < threshold).astype(float),
                     minlength=S)
    hn, hp = nn, np_
    cum_n, cum_p = np.cumsum(cnt_n, axis=1), np.cumsum(cnt_p, axis=1)

    ones = np.ones((1, S))
    hter_point = float(((fa.sum() / hn.sum()) + (fr.sum() / hp.sum())) / 2.0)
    eer_point = float(_weighted_eer(ones, cum_n, cum_p, nn, np_)[0])

    w = _draw_weights(S, n_resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        hters = ((w @ fa) / (w @ hn) + (w @ fr) / (w @ hp)) / 2.0
    chunk = max(1, int(4_000_000 // max(cum_n.shape[1], 1)))
    eers = np.concatenate([_weighted_eer(w[i:i + chunk], cum_n, cum_p, nn, np_)
                           for i in range(0, n_resamples, chunk)])
    degenerate = int(np.isnan(hters).sum())
    q = [50.0 * (1.0 - ci_level), 50.0 * (1.0 + ci_level)]
    h_lo, h_hi = np.nanpercentile(hters, q)
    e_lo, e_hi = np.nanpercentile(eers, q)
    return BootstrapResult(Interval(hter_point, float(h_lo), float(h_hi)),
                           Interval(eer_point, float(e_lo), float(e_hi)),
                           S, n_resamples, degenerate)
