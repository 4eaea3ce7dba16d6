import numpy as np
import pandas as pd

from scagent.bench._splits import holdout_folds, stratified_split


def _obs():
    return pd.DataFrame(
        {
            "tissue": ["a"] * 10 + ["b"] * 6 + ["c"] * 3,
            "cell_type": ["x"] * 5 + ["y"] * 4 + ["z"] + ["x"] * 6 + ["w"] * 3,
            "donor": ["d1", "d2"] * 5 + ["e1", "e2", "e3"] * 2 + ["f1"] * 3,
            "dataset": ["s"] * 19,
        }
    )


def test_stratified_split_is_per_tissue_and_type():
    obs = _obs()
    fold = stratified_split(obs, seed=0)
    assert len(np.intersect1d(fold.train, fold.test)) == 0
    assert len(fold.train) + len(fold.test) == len(obs)
    test = obs.iloc[fold.test]
    # every (tissue, type) group with >= 2 cells has a test cell; singletons stay in training
    assert set(zip(test.tissue, test.cell_type)) == {("a", "x"), ("a", "y"), ("b", "x"), ("c", "w")}
    assert np.flatnonzero(obs.cell_type == "z")[0] in fold.train
    np.testing.assert_array_equal(fold.test, stratified_split(obs, seed=0).test)


def test_holdout_folds_hold_each_group_out_once():
    obs = _obs()
    folds = holdout_folds(obs)
    assert len(folds) == 3  # tissue b has three donors
    held = np.concatenate([f.test for f in folds])
    assert len(held) == len(np.unique(held))
    # tissue c has one donor and one dataset: never held out
    assert not set(np.flatnonzero(obs.tissue == "c")) & set(held)
    assert set(np.flatnonzero(obs.tissue != "c")) == set(held)
    for f in folds:
        assert len(np.intersect1d(f.train, f.test)) == 0
        # within a fold, a tissue's held-out cells come from a single donor
        for _, sub in obs.iloc[f.test].groupby("tissue"):
            assert sub.donor.nunique() == 1
