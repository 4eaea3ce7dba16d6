"""Our scGPT architecture against the published whole-human release, kept as data.

``data/scgpt_whole_human_layout.json`` holds the state-dict keys and shapes and the
``args.json`` of scGPT's ``scGPT_human`` folder, written by hand from public descriptions
of the release (its sources are listed in the file), so a drift of our model or loader away
from the real layout fails here even though every other test reads folders we wrote.
"""

import json
from pathlib import Path

import pytest
import torch

from scagent.models import GeneVocab, load_encoder, load_scgpt_checkpoint, scgpt_encoder_config
from scagent.models._checkpoint import _load_state
from scagent.nn import TransformerModel, remap_scgpt_state_dict

LAYOUT = json.loads((Path(__file__).parent / "data" / "scgpt_whole_human_layout.json").read_text())


def _vocab() -> GeneVocab:
    n_genes = LAYOUT["vocab_size"] - len(LAYOUT["special_tokens"])
    tokens = [f"GENE{i}" for i in range(n_genes)] + LAYOUT["special_tokens"]
    return GeneVocab({t: i for i, t in enumerate(tokens)})


def _published_state(*, device: str = "meta", torch_mha: bool = False) -> dict:
    state = {}
    for key, shape in LAYOUT["state_dict"].items():
        if torch_mha:  # the names scGPT's own loader gives them for PyTorch attention
            key = key.replace("self_attn.Wqkv.", "self_attn.in_proj_")
        state[key] = torch.zeros(shape, device=device)
    return state


@pytest.mark.parametrize("torch_mha", [False, True])
def test_our_model_has_the_published_whole_human_layout(torch_mha):
    vocab = _vocab()
    state = remap_scgpt_state_dict(_published_state(torch_mha=torch_mha))
    cfg = scgpt_encoder_config(LAYOUT["args"], vocab, state)
    assert (cfg.ntoken, cfg.d_model, cfg.nhead, cfg.d_hid, cfg.nlayers) == (60697, 512, 8, 512, 12)
    assert (cfg.n_bins, cfg.pad_value, cfg.mask_value, cfg.nlayers_cls) == (51, -2, -1, 3)
    assert cfg.input_emb_style == "continuous" and cfg.norm_scheme == "post"
    assert cfg.do_mvc and not cfg.explicit_zero_prob
    with torch.device("meta"):
        model = TransformerModel(cfg)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    published = {k: tuple(v.shape) for k, v in state.items()}
    assert sorted(set(published) - set(ours)) == LAYOUT["not_used_for_embedding"]
    assert sorted(set(ours) - set(published)) == sorted(LAYOUT["absent_from_release"])
    wrong = {k: (ours[k], published[k]) for k in ours.keys() & published if ours[k] != published[k]}
    assert not wrong
    _load_state(model, state, Path("scGPT_human"))  # the loader accepts the release as is


@pytest.mark.slow
def test_whole_human_sized_folder_loads_as_an_scgpt_encoder(tmp_path):
    folder = tmp_path / "scGPT_human"
    folder.mkdir()
    (folder / "args.json").write_text(json.dumps(LAYOUT["args"]))
    (folder / "vocab.json").write_text(json.dumps(_vocab().token_to_id))
    state = _published_state(device="cpu")
    state["transformer_encoder.layers.11.linear2.bias"] += 0.5
    torch.save(state, folder / "best_model.pt")
    del state
    model, vocab, args = load_scgpt_checkpoint(folder)
    assert len(vocab) == 60697 and args["max_seq_len"] == 1200
    bias = model.state_dict()["transformer_encoder.layers.11.linear2.bias"]
    assert torch.equal(bias, torch.full((512,), 0.5))
    enc = load_encoder(folder)
    assert (enc.kind, enc.max_len, enc.n_bins, enc.selection) == ("scgpt", 1200, 51, "sample")
    assert enc.model.cfg.pad_value == -2
