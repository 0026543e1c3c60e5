"""The paper's reported numbers (Xu, Li, Deng 2015), in percent: the one place they live.

Table 1 (CASIA-FASD, overall protocol): EER on the validation folds, HTER on test at
the validation EER threshold, EER on test. Baselines are cited as the paper cites
them (its reference numbers in brackets); None is a dash in the paper.
Table 2: test HTER by face-box scale (columns) and model (rows); "LSTM-CNN(n)" has
n input frames. The paper's best: LSTM-CNN(7) at scale 1.8, 5.93 %; CNN at 2.6, 7.34 %.
The paper's own numbers are sample-level (one score per image / per n-frame clip).
"""
from __future__ import annotations

from typing import NamedTuple, Optional


class PaperRow(NamedTuple):
    method: str
    cite: str                       # the paper's reference for the number
    eer_val: Optional[float]
    hter_test: Optional[float]
    eer_test: Optional[float]


TABLE1 = (
    PaperRow("Correlation", "de Freitas Pereira et al. ICB 2013 [3]", 26.65, 30.33, None),
    PaperRow("LBP", "Chingovska et al. BIOSIG 2012 [2]", 16.00, 18.17, None),
    PaperRow("DoG", "Zhang et al. ICB 2012 [20]", None, None, 17.00),
    PaperRow("LBP-TOP", "de Freitas Pereira et al. EURASIP JIVP 2014 [5]", None, None, 10.00),
    PaperRow("CNN", "Xu et al. 2015, Table 1", 6.09, 7.34, 6.20),
    PaperRow("LSTM-CNN", "Xu et al. 2015, Table 1", 5.04, 5.93, 5.17),
)
TABLE1_BY_METHOD = {r.method: r for r in TABLE1}

TABLE2_SCALES = (1.0, 1.4, 1.8, 2.2, 2.6)
# row key: ("cnn", None) or ("lstm", n); values in TABLE2_SCALES order
TABLE2 = {
    ("cnn", None): (8.97, 7.89, 7.42, 7.86, 7.34),
    ("lstm", 3): (8.85, 7.51, 6.94, 7.35, 11.47),
    ("lstm", 5): (8.85, 7.34, 6.80, 6.34, 10.93),
    ("lstm", 7): (8.81, 7.52, 5.93, 6.11, 9.25),
    ("lstm", 9): (8.90, 7.62, 6.25, 6.81, 9.56),
}

# the settings of the paper's best models (Table 1 rows)
BEST = {"cnn": {"scale": 2.6}, "lstm": {"T": 7, "scale": 1.8}}


def table2_value(model: str, T: Optional[int], scale: float) -> Optional[float]:
    """The paper's Table 2 HTER (%) for our model kind ('cnn', 'lstm', 'peephole'),
    sequence length and scale, or None when the paper has no such cell. Both our
    LSTM variants are compared with the paper's LSTM-CNN(n) (which had peepholes)."""
    key = ("cnn", None) if model == "cnn" else ("lstm", T)
    row = TABLE2.get(key)
    for s, v in zip(TABLE2_SCALES, row or ()):
        if abs(s - scale) < 1e-9:
            return v
    return None
