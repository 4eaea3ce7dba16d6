import numpy as np
import pytest

from scagent.bench._measure import measure
from scagent.bench._metrics import scores


def test_scores_known_values():
    y = ["a", "a", "b", "b"]
    p = ["a", "b", "b", "b"]
    s = scores(y, p, ["t1", "t1", "t2", "t2"])
    assert s["accuracy"] == pytest.approx(0.75)
    # F1(a) = 2/3, F1(b) = 0.8
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert s["per_tissue_weighted_f1"]["t2"] == pytest.approx(1.0)
    assert s["per_tissue_weighted_f1"]["t1"] == pytest.approx(2 / 3)  # only type a is true in t1


def test_macro_f1_ignores_predicted_only_classes():
    s = scores(["a", "a"], ["a", "c"], ["t", "t"])
    assert s["macro_f1"] == pytest.approx(2 / 3)


def test_measure_sees_allocation():
    with measure() as m:
        block = np.ones(40 * 2**20 // 8)  # 40 MB
        block[::512] += 1
    assert m.seconds > 0
    assert m.peak_mb > 20
