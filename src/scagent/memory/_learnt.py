"""Cell types learnt after installation (``sa.tl.add_cell_type``), kept in the dataset store.

Cells learnt against the bundled atlas live in the store's dataset :data:`LEARNT`, which
:func:`~scagent.memory.reference_data` joins to the atlas, so every expert sees them; cells
learnt against a user's stored reference are added to that dataset itself. Each update
replaces the dataset atomically (:meth:`~scagent.memory.DatasetStore.add`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

__all__ = ["LEARNT", "atlas_with_learnt", "merge_cells", "store_learnt"]

#: Dataset holding the cells of types learnt against the bundled atlas.
LEARNT = "learnt-types"


def merge_cells(base: AnnData, new: AnnData) -> AnnData:
    """``base`` with ``new``'s cells appended, on ``base``'s genes and ``obs`` columns.

    Genes ``new`` lacks are zero for its cells; ``var['measured_in_<dataset>']`` flags the
    genes each dataset measured, for the new cells' datasets too.
    """
    genes = base.var_names
    idx = genes.get_indexer(new.var_names)
    keep = idx >= 0
    Xn = sp.csr_matrix(new.X, dtype=np.float32)[:, np.flatnonzero(keep)].tocoo()
    Xn = sp.csr_matrix((Xn.data, (Xn.row, idx[keep][Xn.col])), shape=(new.n_obs, len(genes)))
    X = sp.vstack([sp.csr_matrix(base.X, dtype=np.float32), Xn]).tocsr()
    cols = list(base.obs.columns)
    new_obs = pd.DataFrame(index=new.obs_names)
    for c in cols:
        new_obs[c] = new.obs[c].astype(str).to_numpy() if c in new.obs else "unknown"
    obs = pd.concat([base.obs.astype({c: str for c in cols}), new_obs]).astype("category")
    var = base.var.copy()
    for d in pd.unique(new.obs["dataset"].astype(str)):
        col = f"measured_in_{d}"
        measured = np.zeros(len(genes), dtype=bool)
        measured[idx[keep]] = True
        var[col] = (var[col].to_numpy(dtype=bool) if col in var else False) | measured
    out = AnnData(X=X, obs=obs, var=var)
    if not out.obs_names.is_unique:
        msg = "Cell ids of the new cells clash with the reference's; make them unique."
        raise ValueError(msg)
    return out


def atlas_with_learnt(atlas: AnnData, learnt: AnnData) -> AnnData:
    """The atlas joined with the learnt cells (the default reference once types are learnt)."""
    return merge_cells(atlas, learnt)


def store_learnt(store, new: AnnData, report, *, reference: str) -> dict:
    """Add harmonised cells of a new type to the store: to :data:`LEARNT` for the atlas,
    else to the stored dataset ``reference``. Returns the new manifest entry."""
    if reference in (None, "atlas"):
        name = LEARNT
        if LEARNT in store.names():
            base = store.load(LEARNT)
        else:  # the atlas's genes and columns, no cells yet
            from ..datasets import reference_atlas

            atlas = reference_atlas()
            base = AnnData(
                X=sp.csr_matrix((0, atlas.n_vars), dtype=np.float32),
                obs=atlas.obs.iloc[:0].copy(),
                var=atlas.var.copy(),
            )
    else:
        name = reference
        base = store.load(reference)
    merged = merge_cells(base, new)
    return store.add(merged, name=name, source="sa.tl.add_cell_type", report=report, replace=True)
