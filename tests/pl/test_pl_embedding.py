import numpy as np
import pytest

import scagent as sa


def test_calls_draws_call_and_confidence_panels(annotated):
    before = (set(annotated.obsm), set(annotated.uns), list(annotated.obs.columns))
    axes = sa.pl.calls(annotated, show=False)
    assert [a.get_title() for a in axes] == ["scagent call", "confidence"]
    for ax in axes:
        points = ax.collections[0].get_offsets()
        assert len(points) == annotated.n_obs
        np.testing.assert_allclose(np.sort(points[:, 0]), np.sort(annotated.obsm["X_umap"][:, 0]))
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert sorted(legend) == sorted(annotated.obs["scagent_cell_type"].astype(str).unique())
    norm = axes[1].collections[0].norm
    assert (norm.vmin, norm.vmax) == (0.0, 1.0)
    assert (set(annotated.obsm), set(annotated.uns), list(annotated.obs.columns)) == before


def test_calls_computes_a_umap_when_there_is_none(annotated):
    del annotated.obsm["X_umap"]
    ax = sa.pl.calls(annotated, color="scagent_cell_type", show=False)
    assert len(ax.collections[0].get_offsets()) == annotated.n_obs
    assert "X_scagent_umap" not in annotated.obsm  # not asked to keep it
    sa.pl.calls(annotated, color="scagent_confidence", key_added="X_scagent_umap", show=False)
    umap = annotated.obsm["X_scagent_umap"]
    assert umap.shape == (annotated.n_obs, 2) and np.isfinite(umap).all()
    assert umap[:, 0].std() > 0


def test_calls_takes_a_basis_and_an_ax(annotated):
    import matplotlib.pyplot as plt

    annotated.obsm["X_pca"] = annotated.obsm["X_umap"] * 2
    _, ax = plt.subplots()
    got = sa.pl.calls(annotated, basis="pca", color="scagent_agreement", ax=ax, show=False)
    assert got is ax and ax.get_xlabel() == "PC 1"
    assert ax.collections[0].get_offsets()[:, 0].max() == pytest.approx(
        annotated.obsm["X_pca"][:, 0].max()
    )


def test_calls_save_writes_and_closes(annotated, tmp_path):
    import matplotlib.pyplot as plt

    path = tmp_path / "sub" / "calls.png"
    assert sa.pl.calls(annotated, save=path) is None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []


def test_calls_clear_errors(annotated):
    with pytest.raises(sa.InputDataError, match=r"basis='tsne' is not in adata.obsm"):
        sa.pl.calls(annotated, basis="tsne", show=False)
    with pytest.raises(sa.InputDataError, match=r"'nope' not in adata.obs"):
        sa.pl.calls(annotated, color="nope", show=False)
    plain = annotated.copy()
    del plain.obs["scagent_cell_type"]
    with pytest.raises(sa.InputDataError, match=r"Run sa.tl.annotate\(adata\) first"):
        sa.pl.calls(plain, show=False)
