from scagent.bench._encoder import encoder_suite


def test_quick_encoder_suite_compares_three_representations():
    section = encoder_suite(quick=True)
    methods = [r["method"] for r in section.rows]
    for rep in ("pretrained encoder", "random-init encoder", "PCA-50"):
        for probe in ("linear probe", "kNN (k=15)"):
            assert f"{rep}: {probe}" in methods
    for row in section.rows:
        assert 0 <= row["macro_f1"] <= 1
    assert any("pretrained" in n and "random" in n for n in section.notes)
