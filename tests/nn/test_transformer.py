import pytest
import torch

from scagent.nn import EncoderConfig, TransformerModel, remap_scgpt_state_dict


def _tiny(**kw):
    return EncoderConfig(ntoken=50, d_model=16, nhead=2, d_hid=32, nlayers=2, **kw)


def test_whole_human_size_has_the_published_parameter_count():
    # scGPT whole-human: ntoken 60,697, d_model 512, 12 layers, 8 heads, d_hid 512: 51.3 M
    cfg = EncoderConfig(ntoken=60697, d_model=512, nhead=8, d_hid=512, nlayers=12, dropout=0.2)
    n = sum(p.numel() for p in TransformerModel(cfg).parameters())
    assert abs(n - 51.3e6) < 0.1e6
    # the MVC decoder of the pretraining objective adds 0.52 M
    cfg.do_mvc = True
    n_mvc = sum(p.numel() for p in TransformerModel(cfg).parameters())
    assert n_mvc - n == 512 * 512 * 2 + 512


def test_sdpa_attention_matches_torch_multihead_attention():
    torch.manual_seed(0)
    cfg = _tiny(dropout=0.0)
    model = TransformerModel(cfg).eval()
    ref = torch.nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True).eval()
    # copy our first layer's weights into PyTorch's layer through the published-name remap
    ours = {
        k.split("layers.0.", 1)[1]: v for k, v in model.state_dict().items() if "layers.0." in k
    }
    theirs = {
        "self_attn.in_proj_weight": ours["self_attn.Wqkv.weight"],
        "self_attn.in_proj_bias": ours["self_attn.Wqkv.bias"],
        **{k: v for k, v in ours.items() if not k.startswith("self_attn.Wqkv")},
    }
    ref.load_state_dict(theirs)
    x = torch.randn(3, 7, 16)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 5:] = True
    keep = (~pad)[:, None, None, :]
    with torch.no_grad():
        a = model.transformer_encoder.layers[0](x, keep)
        b = ref(x, src_key_padding_mask=pad)
    torch.testing.assert_close(a[~pad], b[~pad], atol=1e-5, rtol=1e-4)


def test_padding_does_not_change_a_cell():
    torch.manual_seed(0)
    model = TransformerModel(_tiny(dropout=0.0)).eval()
    genes = torch.tensor([[1, 5, 6, 7]])
    values = torch.tensor([[-2.0, 3.0, 10.0, 1.0]])
    short = model.cell_embedding(genes, values, torch.zeros(1, 4, dtype=torch.bool))
    genes_p = torch.tensor([[1, 5, 6, 7, 0, 0]])
    values_p = torch.tensor([[-2.0, 3.0, 10.0, 1.0, -2.0, -2.0]])
    pad = torch.tensor([[False] * 4 + [True] * 2])
    padded = model.cell_embedding(genes_p, values_p, pad)
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("style", ["continuous", "category"])
def test_forward_shapes(style):
    model = TransformerModel(_tiny(input_emb_style=style))
    genes = torch.randint(3, 50, (4, 9))
    values = torch.randint(1, 51, (4, 9)).float()
    out = model(genes, values, torch.zeros(4, 9, dtype=torch.bool))
    assert out["states"].shape == (4, 9, 16)
    assert out["cell_emb"].shape == (4, 16)
    assert out["pred"].shape == (4, 9)


def test_remap_published_layouts():
    w = torch.zeros(1)
    state = {
        "module.transformer_encoder.layers.0.self_attn.in_proj_weight": w,
        "transformer_encoder.layers.1.self_attn._impl.Wqkv.weight": w,
        "transformer_encoder.layers.2.self_attn.Wqkv.bias": w,
    }
    assert set(remap_scgpt_state_dict(state)) == {
        "transformer_encoder.layers.0.self_attn.Wqkv.weight",
        "transformer_encoder.layers.1.self_attn.Wqkv.weight",
        "transformer_encoder.layers.2.self_attn.Wqkv.bias",
    }


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        EncoderConfig(ntoken=10, d_model=10, nhead=3)
    with pytest.raises(ValueError, match="input_emb_style"):
        EncoderConfig(ntoken=10, input_emb_style="scaling")
