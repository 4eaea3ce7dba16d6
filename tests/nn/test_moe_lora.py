import pytest
import torch

from scagent.nn import (
    AdaptedLinear,
    EncoderConfig,
    MoELoRAConfig,
    SlotHead,
    TransformerModel,
    active_adapter,
    adapter_active,
    adapter_names,
    adapter_state_dict,
    add_adapter,
    load_adapter_state,
    remove_adapter,
    set_adapter,
)


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = EncoderConfig(ntoken=60, d_model=16, nhead=2, d_hid=32, nlayers=2, pad_token_id=0)
    return TransformerModel(cfg).eval()


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    genes = torch.randint(3, 60, (3, 7), generator=g)
    values = torch.randint(1, 50, (3, 7), generator=g).float()
    return genes, values, torch.zeros(3, 7, dtype=torch.bool)


def _randomise(params, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_update_follows_equation_6():
    """W = W0 + sum_i g(x)_i B_i A_i on the Q and V rows of the fused projection only."""
    torch.manual_seed(0)
    d = 6
    base = torch.nn.Linear(d, 3 * d)
    layer = AdaptedLinear(base, {"q": (0, d), "k": (d, 2 * d), "v": (2 * d, 3 * d)})
    cfg = MoELoRAConfig(n_experts=3, rank=2, alpha=4.0, dropout=0.0)
    layer.add("p", cfg)
    _randomise(layer.adapters["p"].parameters())
    layer.active = "p"
    x = torch.randn(5, d)
    got = layer(x)
    want = base(x).detach().clone()
    for t, (lo, hi) in {"q": (0, d), "v": (2 * d, 3 * d)}.items():
        m = layer.adapters["p"][t]
        gates = torch.softmax(x @ m.gate.weight.T, dim=-1)  # g(x) = softmax(x W_r)
        for i in range(cfg.n_experts):
            A = m.A[i * cfg.rank : (i + 1) * cfg.rank]  # (r, in)
            B = m.B[:, i * cfg.rank : (i + 1) * cfg.rank]  # (out, r)
            want[:, lo:hi] += gates[:, i : i + 1] * (x @ (B @ A).T) * (cfg.alpha / cfg.rank)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got[:, d : 2 * d], base(x)[:, d : 2 * d])  # K untouched


def test_new_adapter_starts_as_identity_and_base_state_is_unchanged():
    model = _model()
    keys = set(model.state_dict())
    batch = _batch()
    before = model.cell_embedding(*batch)
    add_adapter(model, "a", MoELoRAConfig())
    set_adapter(model, "a")
    torch.testing.assert_close(model.cell_embedding(*batch), before)  # B = 0 at start
    own = {k for k in model.state_dict() if ".adapters." not in k}
    assert own == keys  # base weights keep their names (published checkpoints still load)


def test_adapters_switch_without_touching_the_base():
    model = _model()
    batch = _batch()
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    plain = model.cell_embedding(*batch)
    pa = add_adapter(model, "a", MoELoRAConfig())
    pb = add_adapter(model, "b", MoELoRAConfig(targets=("q", "k", "v", "o")))
    _randomise(pa, seed=3)
    _randomise(pb, seed=4)
    assert adapter_names(model) == ["a", "b"]
    set_adapter(model, "a")
    ea = model.cell_embedding(*batch)
    set_adapter(model, "b")
    eb = model.cell_embedding(*batch)
    set_adapter(model, None)
    assert active_adapter(model) is None
    torch.testing.assert_close(model.cell_embedding(*batch), plain)
    assert not torch.allclose(ea, eb) and not torch.allclose(ea, plain)
    set_adapter(model, "a")
    torch.testing.assert_close(model.cell_embedding(*batch), ea)
    for k, v in base_state.items():
        torch.testing.assert_close(model.state_dict()[k], v)
    with pytest.raises(KeyError, match="No adapter 'zzz'"):
        set_adapter(model, "zzz")
    remove_adapter(model, "a")
    assert adapter_names(model) == ["b"]


def test_adapter_active_restores_the_previous_adapter_whatever_happens():
    model = _model()
    batch = _batch()
    plain = model.cell_embedding(*batch)
    _randomise(add_adapter(model, "a", MoELoRAConfig()), seed=3)
    _randomise(add_adapter(model, "b", MoELoRAConfig()), seed=4)
    with adapter_active(model, "a"):
        ea = model.cell_embedding(*batch)
    assert active_adapter(model) is None
    bad = (torch.full_like(batch[0], 10_000), batch[1], batch[2])  # ids beyond the vocabulary
    with pytest.raises(IndexError), adapter_active(model, "a"):
        model.cell_embedding(*bad)
    assert active_adapter(model) is None
    torch.testing.assert_close(model.cell_embedding(*batch), plain, rtol=0, atol=0)
    set_adapter(model, "b")
    with adapter_active(model, None):
        torch.testing.assert_close(model.cell_embedding(*batch), plain, rtol=0, atol=0)
    assert active_adapter(model) == "b"
    with adapter_active(model, "a"):
        torch.testing.assert_close(model.cell_embedding(*batch), ea, rtol=0, atol=0)
        remove_adapter(model, "b")  # the one to restore is gone: the plain model follows
    assert active_adapter(model) is None


def test_adapter_weights_move_to_another_model_under_another_name():
    src, dst = _model(), _model()
    params = add_adapter(src, "x", MoELoRAConfig(n_experts=2, rank=4))
    _randomise(params)
    set_adapter(src, "x")
    batch = _batch()
    want = src.cell_embedding(*batch)
    state = adapter_state_dict(src, "x")
    assert all(".x." not in k for k in state)  # keys carry no adapter name
    add_adapter(dst, "y", MoELoRAConfig(n_experts=2, rank=4))
    load_adapter_state(dst, "y", state)
    set_adapter(dst, "y")
    torch.testing.assert_close(dst.cell_embedding(*batch), want)
    add_adapter(dst, "z", MoELoRAConfig(n_experts=3, rank=4))
    with pytest.raises(ValueError, match="do not fit"):
        load_adapter_state(dst, "z", state)


def test_only_adapter_parameters_train():
    model = _model()
    params = add_adapter(model, "a", MoELoRAConfig())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    set_adapter(model, "a")
    model.cell_embedding(*_batch()).sum().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all(".adapters.a." in n for n in grads)
    # 2 layers x (Q, V) x (A: 5*8 x 16, B: 16 x 5*8, gate: 5 x 16)
    assert sum(p.numel() for p in params) == 2 * 2 * (40 * 16 + 16 * 40 + 5 * 16)


def test_config_validation():
    with pytest.raises(ValueError, match="targets"):
        MoELoRAConfig(targets=("q", "x"))
    with pytest.raises(ValueError, match=">= 1"):
        MoELoRAConfig(rank=0)
    with pytest.raises(ValueError, match="names"):
        add_adapter(_model(), "a.b", MoELoRAConfig())


def test_slot_head_masks_reserved_slots():
    head = SlotHead(8, n_active=3)
    assert head.n_slots == 200 and head.n_active == 3
    logits = head(torch.randn(4, 8))
    assert logits.shape == (4, 200)
    assert torch.isfinite(logits[:, :3]).all() and torch.isinf(logits[:, 3:]).all()
    assert torch.softmax(logits, -1)[:, 3:].sum() == 0
    head.activate(10)
    assert head.n_active == 4 and torch.isfinite(head(torch.randn(1, 8))[0, 10])
    with pytest.raises(ValueError, match="n_active"):
        SlotHead(8, n_active=201)
    with pytest.raises(ValueError, match="Slot 200"):
        head.activate(200)
