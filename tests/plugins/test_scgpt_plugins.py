"""Plugins on a published-layout scGPT checkpoint (fused Wqkv), not only on our encoder."""

import numpy as np

import scagent as sa
from scagent.models import load_encoder
from scagent.plugins import PluginRegistry, train_plugin


def test_plugin_trains_and_annotates_on_a_scgpt_checkpoint(
    tmp_path, atlas, reference, tiny_config, write_scgpt_folder
):
    folder = tmp_path / "scgpt"
    write_scgpt_folder(folder, list(atlas.var_names[::3]), layout="torch")
    enc = load_encoder(folder)
    assert enc.kind == "scgpt"
    panc = reference[reference.obs["tissue"] == "pancreas"].copy()
    plugin = train_plugin(
        panc, label_key="cell_type", tissue="pancreas", model=folder, config=tiny_config
    )
    assert plugin.base_sha256 == enc.sha256 and plugin.base_model == str(folder)
    assert any(".self_attn.Wqkv.q." in k for k in plugin.state)
    reg = PluginRegistry([tmp_path / "plugins"])
    reg.save(plugin)
    out = sa.tl.annotate(panc, tissue="pancreas", plugins=reg, model=folder, copy=True)
    assert out.obsm["X_scagent_tuned"].shape == (panc.n_obs, 32)
    assert np.isfinite(out.obs["scagent_confidence"]).all()
