"""The process-wide encoder: reloaded when its folder changes, never grown by plugins."""

import copy
import dataclasses
import time

import numpy as np
import pytest
import torch

from scagent.models import GeneVocab, load_encoder, model_input, save_checkpoint
from scagent.nn import EncoderConfig, TransformerModel, adapter_names, remove_adapter
from scagent.plugins import PluginError, PluginHost, host_for


def _save(folder, genes, *, seed, max_len=32):
    torch.manual_seed(seed)
    vocab = GeneVocab.from_genes(genes)
    cfg = EncoderConfig(ntoken=len(vocab), d_model=8, nhead=2, d_hid=16, nlayers=1)
    model = TransformerModel(cfg)
    save_checkpoint(folder, model, vocab, {"max_len": max_len, "n_bins": 51})
    return model


def test_a_rewritten_model_folder_is_loaded_again(tmp_path, atlas):
    genes = list(atlas.var_names[:200])
    folder = tmp_path / "model"
    _save(folder, genes, seed=0)
    first = load_encoder(folder)
    assert load_encoder(folder) is first  # cached while the folder is unchanged
    assert first.selection == "top"
    second_model = _save(folder, genes, seed=1, max_len=64)  # atomic rewrite
    second = load_encoder(folder)
    assert second is not first and second.max_len == 64 and second.sha256 != first.sha256
    w = "transformer_encoder.layers.0.linear1.weight"
    torch.testing.assert_close(second.model.state_dict()[w], second_model.state_dict()[w])
    # the weights file overwritten in place (same inode) is noticed too
    time.sleep(0.05)  # past the file system's timestamp granularity
    stale = folder / "model.safetensors"
    new = tmp_path / "other"
    third_model = _save(new, genes, seed=2, max_len=64)
    stale.write_bytes((new / "model.safetensors").read_bytes())
    third = load_encoder(folder)
    assert third is not second
    torch.testing.assert_close(third.model.state_dict()[w], third_model.state_dict()[w])


def test_plugins_do_not_grow_the_encoder(tiny_registry):
    enc = load_encoder()
    base = sum(p.numel() for p in TransformerModel(enc.model.cfg).parameters())
    host = host_for(enc)
    for name in tiny_registry.names():
        host.attach(tiny_registry.load(name))
    assert len(adapter_names(enc.model)) >= 3
    assert sum(p.numel() for p in enc.model.parameters()) > base  # adapters are there ...
    assert enc.n_parameters == base  # ... but the encoder reports its own size


def test_host_keeps_a_bounded_number_of_plugins(tiny_registry, reference):
    shared = load_encoder()
    enc = dataclasses.replace(shared, model=copy.deepcopy(shared.model))
    for name in adapter_names(enc.model):
        remove_adapter(enc.model, name)
    host = PluginHost(enc, max_attached=2)
    keys = [host.attach(tiny_registry.load(n)) for n in ("blood", "pancreas")]
    tokens, _ = host.tokens(*model_input(reference[:4], enc)[:2])
    host.predict(keys[0], tokens)  # blood is now the most recently used
    tissue = host.attach(tiny_registry.load("tissue"))
    assert list(host.plugins) == [keys[0], tissue]
    assert adapter_names(enc.model) == sorted([keys[0], tissue])
    with pytest.raises(PluginError, match="not attached"):
        host.predict(keys[1], tokens)
    probs = host.predict(tissue, tokens).probs
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    remove_adapter(enc.model, tissue)  # removed behind the host's back: put back on use
    np.testing.assert_array_equal(host.predict(tissue, tokens).probs, probs)
    host.detach_all()
    assert not host.plugins and not adapter_names(enc.model)
    with pytest.raises(ValueError, match="max_attached must be at least 1"):
        PluginHost(enc, max_attached=0)
