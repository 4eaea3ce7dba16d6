import numpy as np
import torch
from safetensors.torch import load_file

import scagent as sa
from scagent.models._pretrain import PretrainConfig, pretrain

TINY = dict(d_model=16, nhead=2, d_hid=32, nlayers=1, max_len=32, batch_size=32, seed=3)


def _corpus(atlas):
    adata = atlas[::10].copy()
    sa.pp.prepare(adata)
    adata.X = adata.layers["scagent_log1p_cp10k"]
    return adata


def test_pretrain_learns_and_is_deterministic(tmp_path, atlas):
    corpus = _corpus(atlas)
    rec = pretrain(
        corpus, tmp_path / "a", config=PretrainConfig(epochs=3, lr=3e-3, **TINY), progress=False
    )
    hist = rec["history"]
    assert len(hist) == 3
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]  # the masked-value loss goes down
    pretrain(
        corpus, tmp_path / "b", config=PretrainConfig(epochs=3, lr=3e-3, **TINY), progress=False
    )
    a, b = (
        load_file(tmp_path / "a" / "model.safetensors"),
        load_file(tmp_path / "b" / "model.safetensors"),
    )
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_pretrain_resumes_to_the_same_result(tmp_path, atlas):
    corpus = _corpus(atlas)
    cfg = PretrainConfig(epochs=2, **TINY)
    full = pretrain(corpus, tmp_path / "full", config=cfg, progress=False)
    one = pretrain(corpus, tmp_path / "res", config=cfg, stop_after=1, progress=False)
    assert len(one["history"]) == 1
    rec = pretrain(corpus, tmp_path / "res", config=cfg, progress=False)
    assert [h["epoch"] for h in rec["history"]] == [1, 2]
    np.testing.assert_allclose(
        [h["val_loss"] for h in rec["history"]], [h["val_loss"] for h in full["history"]]
    )
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "res" / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_finished_run_keeps_no_optimizer_state(tmp_path, atlas):
    corpus = _corpus(atlas)
    cfg = PretrainConfig(epochs=2, **TINY)
    pretrain(corpus, tmp_path / "m", config=cfg, stop_after=1, progress=False)
    assert (tmp_path / "m" / "train_state.pt").exists()
    pretrain(corpus, tmp_path / "m", config=cfg, progress=False)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
        "vocab.json",
    ]
