import json

import numpy as np
import pytest
import torch

import scagent as sa
from scagent.models import (
    CheckpointError,
    GeneVocab,
    load_checkpoint,
    load_encoder,
    load_scgpt_checkpoint,
    save_checkpoint,
)
from scagent.nn import EncoderConfig, TransformerModel

# names as they appear in a published scGPT best_model.pt (flash-attention layout)
PUBLISHED_KEYS = [
    "encoder.embedding.weight",
    "encoder.enc_norm.weight",
    "value_encoder.linear1.weight",
    "value_encoder.linear2.weight",
    "value_encoder.norm.weight",
    "transformer_encoder.layers.0.self_attn.Wqkv.weight",
    "transformer_encoder.layers.0.self_attn.Wqkv.bias",
    "transformer_encoder.layers.0.self_attn.out_proj.weight",
    "transformer_encoder.layers.0.linear1.weight",
    "transformer_encoder.layers.0.linear2.weight",
    "transformer_encoder.layers.0.norm1.weight",
    "transformer_encoder.layers.0.norm2.weight",
    "decoder.fc.0.weight",
    "decoder.fc.4.weight",
    "cls_decoder._decoder.0.weight",
    "cls_decoder.out_layer.weight",
    "mvc_decoder.gene2query.weight",
    "mvc_decoder.W.weight",
]


@pytest.mark.parametrize("layout", ["flash", "torch"])
def test_load_published_layout(tmp_path, atlas, layout, write_scgpt_folder):
    genes = list(atlas.var_names[:3000])
    state = write_scgpt_folder(tmp_path / "scgpt", genes, layout=layout)
    if layout == "flash":
        assert set(PUBLISHED_KEYS) <= set(state)
    model, vocab, _ = load_scgpt_checkpoint(tmp_path / "scgpt")
    assert model.cfg.do_mvc and model.cfg.d_model == 32 and len(vocab) == len(genes) + 3
    key = "transformer_encoder.layers.1.self_attn.Wqkv.weight"
    src = state.get(key, state.get(key.replace("Wqkv.weight", "in_proj_weight")))
    torch.testing.assert_close(model.state_dict()[key], src)


def test_scgpt_folder_embeds(tmp_path, atlas, write_scgpt_folder):
    write_scgpt_folder(tmp_path / "scgpt", list(atlas.var_names[::5]))
    adata = atlas[:60].copy()
    sa.tl.embed(adata, model=tmp_path / "scgpt", batch_size=16)
    emb = adata.obsm["X_scagent"]
    assert emb.shape == (60, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    info = adata.uns["scagent"]["embed"]
    assert info["kind"] == "scgpt" and info["max_len"] == 300
    assert info["n_genes_in_vocab"] == len(atlas.var_names[::5])


def test_untrusted_pickle_is_refused(tmp_path, atlas, write_scgpt_folder):
    write_scgpt_folder(tmp_path / "scgpt", list(atlas.var_names[:100]))
    torch.save(
        {"x": np.dtype("float32"), "obj": object.__new__(EvilPayload)},
        tmp_path / "scgpt" / "best_model.pt",
    )
    with pytest.raises(CheckpointError, match="weights only"):
        load_scgpt_checkpoint(tmp_path / "scgpt")


class EvilPayload:
    pass


def test_missing_files_and_shape_mismatch(tmp_path, atlas, write_scgpt_folder):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_scgpt_checkpoint(tmp_path / "nope")
    write_scgpt_folder(tmp_path / "scgpt", list(atlas.var_names[:100]))
    (tmp_path / "scgpt" / "vocab.json").write_text(
        json.dumps(GeneVocab.from_genes(list(atlas.var_names[:90])).token_to_id)
    )
    with pytest.raises(CheckpointError, match=r"vocab\.json has 93 tokens"):
        load_scgpt_checkpoint(tmp_path / "scgpt")
    (tmp_path / "scgpt" / "best_model.pt").unlink()
    with pytest.raises(CheckpointError, match="lacks"):
        load_scgpt_checkpoint(tmp_path / "scgpt")


def test_save_and_load_roundtrip_is_atomic(tmp_path):
    vocab = GeneVocab.from_genes(["A", "B", "C"])
    model = TransformerModel(
        EncoderConfig(ntoken=len(vocab), d_model=8, nhead=2, d_hid=16, nlayers=1)
    )
    save_checkpoint(
        tmp_path / "m",
        model,
        vocab,
        {"max_len": 10, "n_bins": 51},
        extra={"state.pt": {"step": torch.tensor(3)}},
    )
    again, vocab2, cfg = load_checkpoint(tmp_path / "m")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    assert cfg["max_len"] == 10 and vocab2.token_to_id == vocab.token_to_id
    assert torch.load(tmp_path / "m" / "state.pt", weights_only=True)["step"] == 3
    # overwrite: no temporary or old folders are left behind
    save_checkpoint(tmp_path / "m", model, vocab, {"max_len": 12, "n_bins": 51})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert load_checkpoint(tmp_path / "m")[2]["max_len"] == 12


def test_unknown_model_name_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(tmp_path / "missing-model")


def test_fine_tuned_classifier_of_another_shape_is_ignored(tmp_path, atlas, write_scgpt_folder):
    """A released folder whose cls_decoder has its own classes still loads (not used to embed)."""
    state = write_scgpt_folder(tmp_path / "scgpt", list(atlas.var_names[:100]))
    state["cls_decoder.out_layer.weight"] = torch.ones(7, 32)
    state["cls_decoder.out_layer.bias"] = torch.ones(7)
    torch.save(state, tmp_path / "scgpt" / "best_model.pt")
    model, _, _ = load_scgpt_checkpoint(tmp_path / "scgpt")
    assert model.state_dict()["cls_decoder.out_layer.weight"].shape == (1, 32)
    key = "transformer_encoder.layers.0.linear1.weight"
    torch.testing.assert_close(model.state_dict()[key], state[key])
    state[key] = torch.ones(3, 3)  # the encoder itself must fit exactly
    torch.save(state, tmp_path / "scgpt" / "best_model.pt")
    with pytest.raises(CheckpointError, match="has shape"):
        load_scgpt_checkpoint(tmp_path / "scgpt")
