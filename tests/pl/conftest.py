"""A small annotated object built by hand from real cells, with every key ``annotate`` writes.

Running the three experts takes tens of seconds; the plots only read what they wrote, so
most tests here use 50 real PBMC3k cells (the ``pbmc_small`` fixture) with calls derived
from their published labels, and the cluster records computed by scagent's own
``cluster_report`` (the marker genes behind each call). ``test_cli_report.py`` runs the
real annotation.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from sklearn.decomposition import PCA

import scagent as sa
from scagent._constants import (
    LAYER_LOG1P,
    OBS_AGREEMENT,
    OBS_CALL_PREFIX,
    OBS_CLUSTER,
    OBS_CONF,
    OBS_ONTOLOGY,
    OBS_PROB_PREFIX,
    OBS_TISSUE,
    OBS_TYPE,
    UNS_KEY,
)
from scagent.experts._explain import cluster_report

EXPERTS = ("reference", "markers", "plugin")
REASON = "blood fits 99% of the dataset's reference probability"


def annotate_by_hand(adata: AnnData, atlas: AnnData, *, seed: int = 0) -> AnnData:
    """Write the keys of ``sa.tl.annotate`` into ``adata`` (cells with ``obs['cell_type']``).

    Calls are the published labels, except every fifth cell, called as the most frequent
    type; clusters are the published labels; the marker expert says the truth, the
    reference and plugin experts the call.
    """
    rng = np.random.default_rng(seed)
    sa.pp.prepare(adata)
    ids = (
        atlas.obs[["cell_type", "cell_type_ontology_term_id"]]
        .astype(str)
        .drop_duplicates("cell_type")
        .set_index("cell_type")["cell_type_ontology_term_id"]
        .to_dict()
    )
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    call = truth.copy()
    call[::5] = pd.Series(truth).value_counts().index[0]
    terms = np.array([ids[c] for c in call])
    clusters = pd.Categorical(truth).codes.astype(str)
    conf = rng.uniform(0.3, 1.0, adata.n_obs).astype(np.float32)
    agreement = rng.choice([0.0, 1 / 3, 2 / 3, 1.0], adata.n_obs).astype(np.float32)
    expert_calls = {"reference": call, "markers": truth, "plugin": call}
    obs = adata.obs
    obs[OBS_TISSUE] = pd.Categorical(["blood"] * adata.n_obs)
    obs[OBS_TYPE] = pd.Categorical(call)
    obs[OBS_ONTOLOGY] = pd.Categorical(terms)
    obs[OBS_CONF] = conf
    obs[OBS_AGREEMENT] = agreement
    obs[OBS_CLUSTER] = pd.Categorical(clusters)
    for name, calls in expert_calls.items():
        obs[OBS_CALL_PREFIX + name] = pd.Categorical(calls)
        obs[OBS_PROB_PREFIX + name] = rng.uniform(0.2, 1.0, adata.n_obs).astype(np.float32)
    classes = sorted(set(ids.values()))
    probs = rng.dirichlet(np.ones(len(classes)), adata.n_obs).astype(np.float32)
    adata.obsm["scagent_probabilities"] = probs
    X = adata.layers[LAYER_LOG1P]
    adata.obsm["X_umap"] = PCA(2, random_state=seed).fit_transform(X.toarray())
    adata.uns[UNS_KEY]["annotate"] = {
        "classes": classes,
        "class_names": classes,
        "experts": list(EXPERTS),
        "tissue": {"decision": "blood", "how": "dataset", "evidence": {"reason": REASON}},
        "clusters": cluster_report(
            X,
            adata.var_names,
            clusters,
            terms,
            call,
            conf,
            np.array(["blood"] * adata.n_obs),
            expert_calls,
        ),
        "fusion": {
            "weights": {e: 1.0 for e in EXPERTS},
            "smoothing": 0.0,
            "provenance": {"fitted": False},
        },
        "notes": ["A note the experts left."],
        "seconds": {"total": 1.5},
    }
    return adata


@pytest.fixture(scope="session")
def _annotated(_pbmc_small, atlas) -> AnnData:
    return annotate_by_hand(_pbmc_small.copy(), atlas)


@pytest.fixture
def annotated(_annotated) -> AnnData:
    """50 real PBMC3k cells annotated by hand (see the module docstring); a fresh copy."""
    return _annotated.copy()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
