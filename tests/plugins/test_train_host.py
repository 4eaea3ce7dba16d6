import time

import numpy as np
import pytest
import torch

from scagent.models import load_encoder, model_input
from scagent.nn import adapter_names
from scagent.plugins import (
    PluginError,
    PluginHost,
    TrainConfig,
    expected_calibration_error,
    fit_temperature,
    host_for,
    tissue_training_cells,
    train_plugin,
)


def test_reference_plugins_are_trained_and_described(tiny_registry, reference):
    assert tiny_registry.names() == ["blood", "pancreas", "tissue"]
    assert tiny_registry.tissues() == ["blood", "pancreas"]
    tissue = tiny_registry.load("tissue")
    assert tissue.kind == "tissue_assignment" and tissue.labels == ["blood", "pancreas"]
    blood = tiny_registry.load("blood")
    assert blood.kind == "cell_type" and blood.tissue == "blood"
    assert blood.labels == sorted(blood.labels) and len(blood.labels) == 4
    # Cell Ontology ids come from the reference's own column
    onto = dict(zip(blood.labels, blood.ontology_ids))
    assert onto["B cell"] == "CL:0000236"
    assert blood.training["n_cells"] == 24 and blood.training["cells_per_class"]["B cell"] == 6
    assert blood.training["n_train"] == 24 and blood.training["n_val"] == 0
    assert blood.training["history"] and blood.metrics["epochs_run"] == 3
    # no held-out cells: the last fine-tuning epoch is kept, the adapter is trained
    assert blood.metrics["adapter_trained"] is True and blood.metrics["best_epoch"] == 3
    assert any(float(v.abs().max()) > 0 for k, v in blood.state.items() if k.endswith(".B"))
    assert blood.temperature == 1.0 and "no calibration cells" in blood.metrics["temperature_note"]
    assert blood.max_len == 128 and tissue.max_len == 64  # the tissue pass reads fewer tokens
    enc = load_encoder()
    assert blood.base_sha256 == enc.sha256
    # only adapter and head tensors, no base weights
    assert all(k.startswith(("lora.", "head.")) for k in blood.state)
    assert any(".Wqkv.q." in k for k in blood.state) and any(".Wqkv.v." in k for k in blood.state)
    assert not any(".Wqkv.k." in k for k in blood.state)


def test_training_leaves_the_shared_encoder_unchanged(reference, tiny_config):
    enc = load_encoder()
    before = {k: v.clone() for k, v in enc.model.state_dict().items() if ".adapters." not in k}
    sub = reference[reference.obs["tissue"] == "pancreas"].copy()
    train_plugin(sub, label_key="cell_type", tissue="pancreas", config=tiny_config, progress=False)
    after = {k: v for k, v in enc.model.state_dict().items() if ".adapters." not in k}
    assert before.keys() == after.keys()
    for k in before:
        torch.testing.assert_close(after[k], before[k])
    assert not any(n.startswith("_training") for n in adapter_names(enc.model))


def test_training_is_reproducible(reference):
    sub = reference[reference.obs["tissue"] == "pancreas"].copy()
    cfg = TrainConfig(max_epochs=2, batch_size=8, min_steps_per_epoch=2, min_finetune_cells=1)
    a = train_plugin(sub, label_key="cell_type", tissue="pancreas", config=cfg, seed=3)
    b = train_plugin(sub, label_key="cell_type", tissue="pancreas", config=cfg, seed=3)
    assert a.metrics["best_epoch"] == b.metrics["best_epoch"]
    assert a.metrics["temperature_note"] == b.metrics["temperature_note"]
    for k in a.state:
        torch.testing.assert_close(a.state[k], b.state[k])


def test_training_input_errors(reference):
    with pytest.raises(ValueError, match="no column 'celltype'"):
        train_plugin(reference, label_key="celltype", tissue="x")
    with pytest.raises(ValueError, match="needs `tissue=`"):
        train_plugin(reference, label_key="cell_type")
    bad = reference.copy()
    bad.obs["cell_type"] = bad.obs["cell_type"].astype(object)
    bad.obs.iloc[0, bad.obs.columns.get_loc("cell_type")] = None
    with pytest.raises(ValueError, match="1 cells have no 'cell_type'"):
        train_plugin(bad, label_key="cell_type", tissue="x")


def test_borrowing_adds_same_type_cells_from_other_tissues(atlas):
    obs = atlas.obs
    own = tissue_training_cells(
        obs, "colon", tissue_key="tissue", label_key="cell_type", borrow=False
    )
    more = tissue_training_cells(
        obs, "colon", tissue_key="tissue", label_key="cell_type", borrow=True
    )
    assert len(own) == 5 and len(more) > len(own) and set(own) <= set(more)
    assert set(obs.iloc[more]["cell_type"]) == set(obs.iloc[own]["cell_type"])


def test_host_switches_plugins_on_one_encoder_fast(tiny_registry, reference):
    enc = load_encoder()
    host = host_for(enc)
    assert host_for(enc) is host
    keys = [host.attach(tiny_registry.load(n)) for n in ("blood", "pancreas")]
    X, ids, _ = model_input(reference[:8], enc)
    tokens, _ = host.tokens(X, ids)
    a = host.predict(keys[0], tokens)
    b = host.predict(keys[1], tokens)
    assert a.probs.shape == (8, 4) and b.probs.shape == (8, 3)
    np.testing.assert_allclose(a.probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a.embedding, axis=1), 1, atol=1e-5)
    assert not np.allclose(a.embedding, b.embedding)
    np.testing.assert_allclose(host.predict(keys[0], tokens).embedding, a.embedding, atol=1e-6)
    t0 = time.perf_counter()
    for _ in range(10):
        host.use(keys[0])
        host.use(keys[1])
    assert (time.perf_counter() - t0) / 20 < 0.1  # a switch is a flag flip, not a reload


def test_host_refuses_a_plugin_of_another_encoder(tiny_registry):
    p = tiny_registry.load("blood")
    p.base_sha256 = "f" * 64
    p.digest = ""
    with pytest.raises(PluginError, match="was trained on encoder"):
        PluginHost(load_encoder()).attach(p)


def test_temperature_and_ece():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 500)
    logits = rng.normal(size=(500, 3))
    logits[np.arange(500), y] += 1.0
    over = logits * 5  # overconfident
    t = fit_temperature(over, y)
    assert 3 < t < 8
    p_over = np.exp(over) / np.exp(over).sum(1, keepdims=True)
    p_cal = np.exp(over / t) / np.exp(over / t).sum(1, keepdims=True)
    correct = p_over.argmax(1) == y
    assert expected_calibration_error(p_cal.max(1), correct) < expected_calibration_error(
        p_over.max(1), correct
    )
    assert fit_temperature(over[:5], y[:5]) == 1.0  # too few cells to fit
    # the prior pulls a temperature fitted on few cells towards 1
    few, y_few = logits[:20] * 1.5, y[:20]
    free = fit_temperature(few, y_few, prior_sd=None)
    assert abs(np.log(fit_temperature(few, y_few))) <= abs(np.log(free))
    assert fit_temperature(few, y_few, prior_sd=0.01) == pytest.approx(1, abs=0.05)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0


def test_gene_subset_augmentation_hides_genes():
    from scagent.plugins._stages import gene_subset

    rng = np.random.default_rng(0)
    ids = np.arange(20_000)
    ids[:100] = -1  # genes outside the vocabulary stay outside
    sub = gene_subset(ids, (0.1, 0.1), rng)
    assert (sub[:100] == -1).all()
    assert 0.08 < (sub >= 0).mean() < 0.12
    kept = sub >= 0
    np.testing.assert_array_equal(sub[kept], ids[kept])  # kept genes keep their ids
    shares = [(gene_subset(ids, (0.02, 0.5), rng) >= 0).mean() for _ in range(200)]
    assert 0.015 < min(shares) and max(shares) < 0.55 and np.std(shares) > 0.05
