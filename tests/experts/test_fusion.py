"""Fusion: pooling, smoothing, learnt weights and the confidence model."""

import numpy as np
import pytest
import scipy.sparse as sp

from scagent.experts import Evidence, FusionParams, alone, fit_fusion, fuse
from scagent.experts._fusion import FLOOR, pool, smooth, uninformed


def _graph(n, k=3, seed=0):
    """Each cell's neighbours: ``k`` other cells at random (an empty graph for one cell)."""
    if n < 2:
        return sp.csr_matrix((n, n))
    rng = np.random.default_rng(seed)
    k = min(k, n - 1)
    others = [rng.choice([j for j in range(n) if j != i], k, replace=False) for i in range(n)]
    rows = np.repeat(np.arange(n), k)
    return sp.csr_matrix((np.full(n * k, 1 / k), (rows, np.ravel(others))), shape=(n, n))


def _evidence(probs, allowed=None, graph=None):
    n, L = next(iter(probs.values())).shape
    return Evidence(
        [f"CL:{i:07d}" for i in range(L)],
        [f"type {i}" for i in range(L)],
        np.ones((n, L), bool) if allowed is None else allowed,
        probs,
        graph if graph is not None else _graph(n),
    )


def test_pool_is_a_weighted_geometric_mean_with_a_floor():
    a = np.array([[0.7, 0.2, 0.1]])
    b = np.array([[0.2, 0.6, 0.2]])
    ev = _evidence({"reference": a, "markers": b})
    got = pool(ev, {"reference": 2.0, "markers": 1.0})
    want = a**2 * b
    np.testing.assert_allclose(got, want / want.sum(), rtol=1e-6)
    veto = _evidence({"reference": np.array([[1.0, 0.0]]), "markers": np.array([[0.0, 1.0]])})
    p = pool(veto, {"reference": 1.0, "markers": 1.0})  # neither expert can veto alone
    np.testing.assert_allclose(p, [[0.5, 0.5]])
    assert FLOOR > 0


def test_pool_skips_experts_without_an_opinion_and_respects_allowed_classes():
    a = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    b = np.array([[np.nan] * 3, [0.6, 0.3, 0.1]])
    allowed = np.array([[True, True, True], [True, True, False]])
    ev = _evidence({"reference": a, "markers": b}, allowed)
    p = pool(ev, {"reference": 1.0, "markers": 1.0})
    np.testing.assert_allclose(p[0], a[0])  # markers had no opinion on cell 0
    assert p[1, 2] == 0 and p[1].sum() == pytest.approx(1)
    r = a[1, :2] / a[1, :2].sum() * b[1, :2] / b[1, :2].sum()
    np.testing.assert_allclose(p[1, :2], r / r.sum(), rtol=1e-6)


def test_smoothing_moves_a_cell_towards_its_neighbours():
    P = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    g = sp.csr_matrix(np.array([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]))
    S = smooth(P, g, 0.5, np.ones_like(P, bool))
    np.testing.assert_allclose(S[0], [0.5, 0.5])
    np.testing.assert_allclose(S.sum(1), 1)
    assert smooth(P, g, 0.0, np.ones_like(P, bool)) is P


def _synthetic_task(seed, n=300, L=4, noise_good=1.2, noise_bad=3.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, L, n)
    onehot = np.eye(L)[y]

    def expert(noise):
        z = onehot * 2 + rng.normal(0, noise, (n, L))
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    ev = _evidence({"reference": expert(noise_good), "markers": expert(noise_bad)}, graph=_graph(n))
    return ev, onehot.astype(bool)


def test_fit_fusion_weighs_the_informative_expert_and_calibrates():
    tasks = [_synthetic_task(s) for s in range(3)]
    params = fit_fusion(tasks, experts=("reference", "markers"), provenance={"test": True})
    assert params.weights["reference"] > params.weights["markers"]
    assert params.provenance["fitted"] and params.provenance["n_tasks"] == 3
    ev, targets = _synthetic_task(7)
    fused = fuse(ev, params)
    right = targets[np.arange(len(targets)), fused.call]
    assert right.mean() > 0.6
    assert not right.all()
    # calibrated on new data: mean confidence close to accuracy
    assert abs(fused.confidence.mean() - right.mean()) < 0.08
    assert np.all((fused.confidence >= 0) & (fused.confidence <= 1))


def test_params_round_trip_and_shipped_or_uninformed(tmp_path):
    p = uninformed()
    p.to_json(tmp_path / "f.json")
    q = FusionParams.from_json(tmp_path / "f.json")
    assert q == p
    shipped = FusionParams.shipped()
    assert set(shipped.weights) >= {"reference", "markers"}


def test_alone_applies_the_temperature_within_allowed_classes():
    a = np.array([[0.6, 0.3, 0.1]])
    allowed = np.array([[True, True, False]])
    ev = _evidence({"reference": a}, allowed)
    p1 = alone(ev, "reference", 1.0)
    np.testing.assert_allclose(p1, [[2 / 3, 1 / 3, 0]], rtol=1e-6)
    p2 = alone(ev, "reference", 2.0)
    assert p2[0, 0] < p1[0, 0]  # a higher temperature flattens
    assert alone(ev, "plugin") is None


def test_an_expert_absent_from_every_task_gets_no_weight():
    tasks = [_synthetic_task(s) for s in range(2)]
    params = fit_fusion(tasks, experts=("reference", "markers", "plugin"))
    assert params.weights["plugin"] == 0.0  # no evidence: it must not weigh on real calls
    assert params.weights["reference"] > 0 and "plugin" not in params.temperatures


def test_the_shipped_fusion_was_fitted_on_cross_study_tasks():
    shipped = FusionParams.shipped()
    prov = shipped.provenance
    assert prov.get("fitted") and prov["n_tasks"] >= 10
    assert any("Kang" in t for t in prov["tasks"]) and any("Baron" in t for t in prov["tasks"])
