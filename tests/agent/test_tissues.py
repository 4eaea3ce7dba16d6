import pytest

from scagent.agent import canonical_tissue, find_tissues


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bone marrow", "bone_marrow"),
        ("Bone_Marrow", "bone_marrow"),
        ("bone-marrow", "bone_marrow"),
        ("PBMC", "blood"),
        ("peripheral blood", "blood"),
        ("Lung", "lung"),
        ("pulmonary", "lung"),
        ("pancreatic islets", "pancreas"),
        ("human lung tissue", "lung"),
        ("Gall Bladder", "bladder"),
        ("gallbladder", "gallbladder"),
        ("null", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_tissue(name, expected):
    assert canonical_tissue(name) == expected


def test_find_tissues_in_order_without_substrings():
    assert find_tissues("PBMCs and some lung cells") == ["blood", "lung"]
    # "colonic" is colon, but "colony" is not; "liver" inside "deliver" is not
    assert find_tissues("please deliver the colony counts") == []
    assert find_tissues("cells from the bone marrow") == ["bone_marrow"]
