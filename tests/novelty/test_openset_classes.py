"""Which reference classes the open-set models judge cells by."""

import anndata as ad
import numpy as np
import pandas as pd

from scagent.memory._learnt import LEARNT
from scagent.novelty._openset import MIN_CLASS_CELLS, _unjudged_classes


def _reference(sizes: dict[tuple[str, str, str], int]) -> ad.AnnData:
    rows = [
        {"cell_type_ontology_term_id": term, "tissue": tissue, "dataset": dataset}
        for (term, tissue, dataset), n in sizes.items()
        for _ in range(n)
    ]
    obs = pd.DataFrame(rows, index=[f"c{i}" for i in range(len(rows))])
    return ad.AnnData(X=np.zeros((len(obs), 1), dtype=np.float32), obs=obs)


def test_small_and_learnt_classes_are_not_judged_by():
    assert MIN_CLASS_CELLS == 17  # 5 cells held out for the threshold, at 30%
    ref = _reference(
        {
            ("CL:a", "brain", "atlas"): 40,
            ("CL:b", "brain", "atlas"): MIN_CLASS_CELLS,
            ("CL:c", "brain", "atlas"): MIN_CLASS_CELLS - 1,
            ("name:malignant cell", "brain", LEARNT): 50,  # learnt: never, however many
            ("CL:c", "blood", "atlas"): 200,
        }
    )
    assert _unjudged_classes(ref, "brain") == {"CL:c", "name:malignant cell"}
    assert _unjudged_classes(ref, "") == {"name:malignant cell"}  # across tissues: pooled
