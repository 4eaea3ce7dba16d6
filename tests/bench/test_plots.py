import matplotlib.image as mpimg
import numpy as np
import pytest

from scagent.bench._plots import confusion_plot, radar_plot, umap_plot


def _check_png(path, min_side=200):
    assert path.is_file()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3
    assert min(img.shape[:2]) >= min_side
    assert img[..., :3].std() > 0.01  # something was drawn


def test_confusion_plot_with_predicted_only_label(tmp_path):
    rng = np.random.default_rng(0)
    y_true = rng.choice([f"type {i}" for i in range(30)], size=600)
    y_pred = y_true.copy()
    y_pred[::7] = "never true"  # predicted label absent from the truth
    path = tmp_path / "sub" / "confusion.png"
    confusion_plot(y_true, y_pred, path, title="confusion")
    _check_png(path, min_side=600)


def test_confusion_plot_pools_extra_classes(tmp_path):
    y = [f"c{i}" for i in range(50)] * 2
    path = tmp_path / "many.png"
    confusion_plot(y, y[::-1], path, title="many", max_classes=10)
    _check_png(path)


def test_confusion_plot_rejects_length_mismatch(tmp_path):
    with pytest.raises(ValueError, match="equal length"):
        confusion_plot(["a", "b"], ["a"], tmp_path / "x.png", title="x")
    assert not (tmp_path / "x.png").exists()


def test_radar_plot_with_missing_and_nan(tmp_path):
    values = {
        "method A": {"blood": 0.9, "lung": 0.7, "pancreas": np.nan},
        "method B": {"blood": 0.5, "kidney": 0.8},
    }
    path = tmp_path / "radar.png"
    radar_plot(values, path, title="weighted F1 per tissue")
    _check_png(path)


def test_radar_plot_rejects_empty(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        radar_plot({}, tmp_path / "r.png", title="r")


def test_umap_plot_two_panels(tmp_path):
    rng = np.random.default_rng(0)
    n = 240
    labels = np.repeat([f"type {i}" for i in range(24)], n // 24)  # more than 20 colours
    centers = rng.normal(scale=5.0, size=(24, 16))
    codes = np.repeat(np.arange(24), n // 24)
    embeddings = {
        "model": centers[codes] + rng.normal(size=(n, 16)),
        "PCA": rng.normal(size=(n, 8)),
    }
    path = tmp_path / "umap.png"
    umap_plot(embeddings, labels, path, title="embeddings", seed=0)
    _check_png(path)
    img = mpimg.imread(path)
    assert img.shape[1] > img.shape[0]  # panels side by side


def test_umap_plot_rejects_wrong_rows(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        umap_plot({"x": np.zeros((5, 3))}, ["a"] * 6, tmp_path / "u.png", title="u")
