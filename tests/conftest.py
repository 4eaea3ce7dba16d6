"""Shared fixtures: small real matrices cut from the bundled reference atlas.

The atlas ships inside the package, so most tests need nothing else. Tests that read the
project's real data files use the ``shared_data`` fixture, which skips them when the
``shared`` folder (a sibling of the repository root) is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData

import scagent as sa
from scagent.models import GeneVocab
from scagent.nn import EncoderConfig, TransformerModel
from scagent.plugins import PluginRegistry, TrainConfig, train_reference_plugins

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

#: Cells and genes of the small PBMC3k matrix most tests use.
N_CELLS, N_GENES = 50, 400


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's real data folder (``../shared/data``); skips when it is missing."""
    path = SHARED_DATA.resolve()
    if not (path / "labelled").is_dir():
        pytest.skip(f"real data folder {path} is missing")
    return path


@pytest.fixture(scope="session")
def atlas() -> AnnData:
    """The bundled human reference atlas, loaded once. Do not modify it: ``.copy()`` first."""
    return sa.datasets.reference_atlas()


@pytest.fixture(scope="session")
def mouse_atlas() -> AnnData:
    """The bundled mouse pancreas cells, loaded once. Do not modify it."""
    return sa.datasets.reference_atlas(species="mouse")


@pytest.fixture(scope="session")
def _pbmc_small(atlas: AnnData) -> AnnData:
    pbmc = atlas[atlas.obs["dataset"] == "pbmc3k"]
    cells = pbmc.obs_names[:: pbmc.n_obs // N_CELLS][:N_CELLS]  # spread over the file
    sub = pbmc[cells]
    totals = np.asarray(sub.X.sum(axis=0)).ravel()
    keep = (
        sub.var["measured_in_pbmc3k"].to_numpy()
        & (sub.var["ensembl_id"].to_numpy() != "")
        & (totals > 0)
    )
    order = np.argsort(-totals[keep], kind="stable")[:N_GENES]
    genes = sub.var_names[keep][np.sort(order)]
    out = sub[:, genes].copy()
    out.obs = out.obs[["cell_type", "tissue", "donor"]].copy()
    out.var = out.var[["ensembl_id"]].copy()
    out.uns = {}
    out.X = sp.csr_matrix(out.X, dtype=np.float32)
    return out


@pytest.fixture
def pbmc_small(_pbmc_small: AnnData) -> AnnData:
    """50 real PBMC3k cells x their 400 most expressed genes, raw UMI counts (CSR float32).

    ``var_names`` are current human symbols, ``var['ensembl_id']`` their Ensembl ids. A fresh
    copy for every test.
    """
    return _pbmc_small.copy()


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    """Fast settings: enough steps to learn blood vs pancreas, not to converge.

    No validation split, so the last fine-tuning epoch is kept (adapters are non-zero).
    """
    return TrainConfig(
        probe_epochs=30,
        max_epochs=3,
        batch_size=16,
        min_steps_per_epoch=4,
        val_fraction=0,
        min_finetune_cells=1,
    )


def _small_reference(atlas: AnnData, per_type: int = 6) -> AnnData:
    """A few cells of each type of blood (PBMC3k, 4 types) and pancreas (3 types)."""
    keep = {
        "blood": ["B cell", "CD14+ monocyte", "natural killer cell", "naive CD4+ T cell"],
        "pancreas": ["pancreatic alpha cell", "pancreatic beta cell", "macrophage"],
    }
    obs = atlas.obs
    pos = []
    for tissue, types in keep.items():
        for t in types:
            m = np.flatnonzero((obs["tissue"] == tissue).to_numpy() & (obs["cell_type"] == t))
            pos.extend(m[:per_type])
    return atlas[np.sort(pos)].copy()


@pytest.fixture(scope="session")
def reference(atlas) -> AnnData:
    """42 real cells: 4 blood types and 3 pancreas types, 6 cells each."""
    return _small_reference(atlas)


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory, reference, tiny_config) -> PluginRegistry:
    """Tissue-assignment + blood + pancreas plugins, trained briefly (a few seconds)."""
    reg = PluginRegistry([tmp_path_factory.mktemp("plugins")])
    train_reference_plugins(reference, reg, config=tiny_config, seed=0, progress=False)
    return reg


def _scgpt_folder(folder, genes, *, layout="flash", d=32, nlayers=2, seed=0):
    """A model folder in the published layout: args.json, vocab.json, best_model.pt."""
    folder.mkdir()
    vocab = GeneVocab.from_genes(genes)
    args = {
        "embsize": d,
        "nheads": 4,
        "d_hid": 64,
        "nlayers": nlayers,
        "n_layers_cls": 3,
        "dropout": 0.2,
        "n_bins": 51,
        "pad_token": "<pad>",
        "pad_value": -2,
        "input_emb_style": "continuous",
        "MVC": True,
        "max_seq_len": 300,
    }
    (folder / "args.json").write_text(json.dumps(args))
    (folder / "vocab.json").write_text(json.dumps(vocab.token_to_id))
    torch.manual_seed(seed)
    cfg = EncoderConfig(
        ntoken=len(vocab),
        d_model=d,
        nhead=4,
        d_hid=64,
        nlayers=nlayers,
        do_mvc=True,
        pad_token_id=vocab.pad_id,
    )
    state = TransformerModel(cfg).state_dict()
    if layout == "torch":
        state = {
            k.replace("self_attn.Wqkv.weight", "self_attn.in_proj_weight").replace(
                "self_attn.Wqkv.bias", "self_attn.in_proj_bias"
            ): v
            for k, v in state.items()
        }
    torch.save(state, folder / "best_model.pt")
    return state


@pytest.fixture(scope="session")
def write_scgpt_folder():
    """``write(folder, genes, *, layout="flash"|"torch", d=32, nlayers=2, seed=0) -> state``:
    a random model folder in scGPT's published layout (args.json, vocab.json, best_model.pt)."""
    return _scgpt_folder
