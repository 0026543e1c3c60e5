"""CASIA-FASD's seven test protocols (eval/protocols.py) as masks over score rows."""
from data_prep.casia import ATTACK_TYPES, QUALITIES, STEMS
from eval import scores
from eval.protocols import PROTOCOLS, mask


def test_protocol_masks():
    rows = [scores.make_row(1, stem, 0, 0.5) for stem in STEMS]
    arr = scores.as_arrays(rows)
    assert PROTOCOLS == ("overall", "low", "normal", "high", "warped", "cut", "video")
    assert mask(arr, "overall").sum() == 12
    for q in QUALITIES:  # 1 genuine + 3 attacks of that quality
        sel = mask(arr, q)
        assert sel.sum() == 4 and set(arr["quality"][sel]) == {q}
    for a in ATTACK_TYPES:  # all 3 genuine + the 3 videos of that attack
        sel = mask(arr, a)
        assert sel.sum() == 6 and set(arr["attack"][sel]) == {"genuine", a}
