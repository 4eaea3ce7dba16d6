"""Data sets that ship inside the package."""

from __future__ import annotations

from importlib import resources

import anndata as ad
from anndata import AnnData

__all__ = ["novel_type_example", "reference_atlas"]


def _load(name: str) -> AnnData:
    path = resources.files("scagent.datasets") / "data" / f"{name}.h5ad"
    with resources.as_file(path) as p:
        return ad.read_h5ad(p)


def reference_atlas(*, species: str = "human") -> AnnData:
    """The bundled labelled reference: real cells from four studies.

    Built by ``scripts/build_reference_atlas.py`` from every labelled file in the
    project's shared data: PBMC3k (10x Genomics), the human cells of Baron et al. 2016
    (pancreas), the non-malignant cells of Tirosh et al. 2016 (oligodendroglioma) and the
    T cells of Wu et al. 2020 (lung, endometrium, kidney, colon, blood). See
    ``adata.uns['scagent_dataset']['studies']`` for the sources and licences.

    Parameters
    ----------
    species
        ``"human"`` (3,055 cells, 7 tissues) or ``"mouse"`` (175 mouse pancreas cells of
        Baron et al. 2016, mouse gene symbols), kept apart from the human atlas.

    Returns
    -------
    Raw counts in ``X`` (Smart-seq2 expected counts for the Tirosh cells), current gene
    symbols as ``var_names`` (``var['ensembl_id']``, ``var['measured_in_<dataset>']``),
    and ``obs`` columns ``tissue``, ``cell_type`` (harmonised readable name),
    ``cell_type_ontology_term_id`` (Cell Ontology), ``cell_type_ontology_label``,
    ``cell_type_original``, ``donor``, ``technology``, ``dataset``, ``species``.
    """
    if species == "human":
        return _load("reference_atlas")
    if species == "mouse":
        return _load("mouse_pancreas")
    msg = f"species must be 'human' or 'mouse', got {species!r}."
    raise ValueError(msg)


def novel_type_example() -> AnnData:
    """Malignant oligodendroglioma cells, a cell type the reference does not contain.

    142 Smart-seq2 cells from four patients of Tirosh et al. 2016 (Nature 539:309), with
    the patient in ``obs['donor']`` and ``obs['annotation']`` (``malignant_<patient>``).
    The same study's non-malignant cells (oligodendrocytes, microglia) are in
    :func:`reference_atlas`, so the pair is a test of novel-type detection and
    incremental learning.

    Returns
    -------
    Expected counts in ``X`` and the same ``obs`` columns as :func:`reference_atlas`.
    """
    return _load("novel_type_example")
