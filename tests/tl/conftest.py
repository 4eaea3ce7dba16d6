"""Shared data of the tl tests."""

import anndata as ad
import numpy as np
import pytest

import scagent as sa


@pytest.fixture(scope="session")
def novel_query(atlas):
    """A function making a small labelled reference and a query of held-out known cells plus
    malignant oligodendroglioma cells (a type the reference lacks).

    ``split(tissue, cell_type, n)`` gives, for each atlas (tissue, type) of ``n`` cells, the
    ``(reference, held-out)`` row slices of its shuffled cells, or ``None`` to leave it out.
    Returns the reference, the query and which query cells are malignant.
    """

    def make(split, *, n_malignant: int, seed: int):
        rng = np.random.default_rng(seed)
        ref_rows, known_rows = [], []
        groups = atlas.obs.groupby(["tissue", "cell_type"], observed=True).indices
        for (tissue, name), idx in groups.items():
            cut = split(tissue, name, len(idx))
            if cut is not None:
                idx = rng.permutation(idx)
                ref_rows.extend(idx[cut[0]])
                known_rows.extend(idx[cut[1]])
        ref = atlas[np.sort(ref_rows)].copy()
        malignant = sa.datasets.novel_type_example()[:n_malignant]
        known = atlas[np.sort(known_rows)]
        genes = known.var_names.intersection(malignant.var_names)
        query = ad.concat([malignant[:, genes], known[:, genes]], join="inner")
        query.obs_names_make_unique()
        novel = np.r_[np.ones(malignant.n_obs, bool), np.zeros(known.n_obs, bool)]
        return ref, query, novel

    return make
