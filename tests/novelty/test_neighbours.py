"""Nearest known cells for novelty come from the reference being annotated against."""

import numpy as np

from scagent.memory import VectorMemory
from scagent.novelty import MemoryNeighbours


def test_memory_neighbours_stay_within_the_reference_dataset(tmp_path):
    rng = np.random.default_rng(0)
    V = rng.normal(size=(200, 8)).astype(np.float32)
    datasets = np.where(np.arange(200) < 100, "atlas", "lab")
    with VectorMemory(tmp_path / "m.db") as memory:
        memory.insert(
            "pretrained",
            V,
            cell_ids=[f"c{i}" for i in range(200)],
            tissue="blood",
            cell_type=np.where(datasets == "atlas", "T cell", "my T cells"),
            ontology_id=np.where(datasets == "atlas", "CL:0000084", ""),
            dataset=datasets,
            encoder="enc",
        )
        q = V[:10] + 0.01  # nearest to atlas cells
        lab = MemoryNeighbours(memory, "enc", dataset="lab").search("pretrained", q, k=5)
        assert (lab["dataset"] == "lab").all() and (lab["cell_type"] == "my T cells").all()
        both = MemoryNeighbours(memory, "enc").search("pretrained", q, k=5)
        assert (both["dataset"][:, 0] == "atlas").all()
        other = MemoryNeighbours(memory, "other-encoder").search("pretrained", q, k=5)
        assert np.isnan(other.distance).all()
