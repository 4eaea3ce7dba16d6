"""A user's labelled dataset in the layout of the bundled atlas, with a label report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import LAYER_COUNTS, LAYER_LOG1P, VAR_ENSEMBL
from .._errors import InputDataError

__all__ = ["LabelReport", "harmonise_reference", "valid_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_UNKNOWN = "unknown"


def valid_name(name: str) -> str:
    """Check a dataset name (letters, digits, ``_.-``, at most 64 characters)."""
    if not isinstance(name, str) or not _NAME.match(name):
        msg = (
            f"Dataset name {name!r} is not allowed: use letters, digits, '_', '.' or '-' "
            "(at most 64 characters, starting with a letter or digit)."
        )
        raise InputDataError(msg)
    return name


@dataclass
class LabelReport:
    """How a dataset's cell-type labels were mapped to the Cell Ontology.

    Attributes
    ----------
    table
        One row per label: ``label``, ``n_cells``, ``ontology_id`` (``""`` when not
        matched), ``ontology_label``, ``matched``, ``how`` (the label is an ontology id,
        an ontology label or synonym, one with '+' read as '-positive', or a name the
        bundled atlas uses).
    n_dropped
        Cells left out because their label or tissue was missing.
    values
        ``"counts"`` (raw counts stored) or ``"cp10k"`` (the file had no counts: counts
        per 10,000 stored instead).
    """

    table: pd.DataFrame
    n_dropped: int = 0
    values: str = "counts"
    unmatched: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        miss = self.table[~self.table["matched"]]
        self.unmatched = dict(zip(miss["label"], miss["n_cells"].astype(int)))

    def text(self) -> str:
        """A few lines for a person."""
        t = self.table
        lines = [
            f"{int(t['matched'].sum())} of {len(t)} cell-type labels matched a Cell Ontology "
            f"term ({int(t.loc[t['matched'], 'n_cells'].sum()):,} of "
            f"{int(t['n_cells'].sum()):,} cells)."
        ]
        if self.unmatched:
            lines.append(
                "Kept without an ontology id (rename them to Cell Ontology labels to link "
                "them): " + ", ".join(f"{k!r} ({v})" for k, v in self.unmatched.items())
            )
        if self.n_dropped:
            lines.append(f"{self.n_dropped:,} cells without a label or tissue were left out.")
        if self.values == "cp10k":
            lines.append("The file has no raw counts: counts per 10,000 were stored instead.")
        return "\n".join(lines)


def _column(adata: AnnData, key: str, what: str) -> pd.Series:
    if key not in adata.obs:
        msg = f"No .obs column {key!r} for the {what}; columns: {sorted(adata.obs.columns)}."
        raise InputDataError(msg)
    col = adata.obs[key]
    return col.astype(str).str.strip().where(col.notna(), "")


def _atlas_names() -> dict[str, str]:
    """The bundled atlas's own cell-type names and their ontology ids (lower case)."""
    from ..datasets import reference_atlas

    pairs = reference_atlas().obs[["cell_type", "cell_type_ontology_term_id"]].astype(str)
    return {n.lower(): t for n, t in pairs.drop_duplicates().itertuples(index=False) if t}


def _match(label: str, onto, atlas: dict[str, str]) -> tuple[str, str]:
    """Ontology id of ``label`` and how it was found (``""`` twice when not)."""
    if label in onto:
        return label, "ontology id"
    if term := onto.find(label):
        return term, "ontology label or synonym"
    if "+" in label and (term := onto.find(label.replace("+", "-positive"))):
        return term, "ontology label, '+' read as '-positive'"
    if term := atlas.get(label.strip().lower()):
        return term, "name used by the bundled atlas"
    return "", ""


def _map_labels(labels: pd.Series) -> pd.DataFrame:
    from ..knowledge import cell_ontology

    onto = cell_ontology()
    atlas = _atlas_names()
    rows = []
    for label, n in labels.value_counts().items():
        term, how = _match(label, onto, atlas)
        rows.append(
            {
                "label": label,
                "n_cells": int(n),
                "ontology_id": term,
                "ontology_label": onto.label(term) if term else "",
                "matched": bool(term),
                "how": how,
            }
        )
    return pd.DataFrame(rows)


def harmonise_reference(
    adata: AnnData,
    *,
    name: str,
    cell_type_key: str,
    tissue_key: str | None = None,
    tissue: str | None = None,
    donor_key: str | None = None,
) -> tuple[AnnData, LabelReport]:
    """A labelled dataset in the reference layout scagent stores and trains on.

    Parameters
    ----------
    adata
        Cells read by :func:`scagent.read` (genes recognised).
    name
        The dataset's name (``obs['dataset']``, ``var['measured_in_<name>']``).
    cell_type_key
        ``.obs`` column of cell-type labels.
    tissue_key, tissue
        ``.obs`` column of tissues, or one tissue for all cells.
    donor_key
        ``.obs`` column of donors (default ``donor`` when present, else ``"unknown"``).

    Returns
    -------
    The harmonised object (raw counts, or counts per 10,000 when the file has none, in
    ``X``; ``obs`` ``tissue``, ``cell_type``, ``cell_type_ontology_term_id``,
    ``cell_type_ontology_label``, ``cell_type_original``, ``donor``, ``technology``,
    ``dataset``; ``var`` ``ensembl_id`` and ``measured_in_<name>``; cell ids prefixed
    ``<name>:``) and the label report.
    """
    from ..pp import prepare

    valid_name(name)
    if (tissue_key is None) == (tissue is None):
        msg = "Give the tissue either as an .obs column (tissue_key) or one tissue (tissue)."
        raise InputDataError(msg)
    labels = _column(adata, cell_type_key, "cell types")
    tissues = (
        _column(adata, tissue_key, "tissues")
        if tissue_key is not None
        else pd.Series(tissue, index=adata.obs_names)
    )
    donors = (
        _column(adata, donor_key, "donors")
        if donor_key is not None
        else _column(adata, "donor", "donors")
        if "donor" in adata.obs
        else pd.Series(_UNKNOWN, index=adata.obs_names)
    )
    keep = ((labels != "") & (labels.str.lower() != "nan") & (tissues != "")).to_numpy()
    if not keep.any():
        msg = f"No cell has both a label in {cell_type_key!r} and a tissue."
        raise InputDataError(msg)
    data = adata[keep].copy() if not keep.all() else adata.copy()
    prepare(data)
    if LAYER_COUNTS in data.layers:
        X, values = data.layers[LAYER_COUNTS], "counts"
    else:
        X, values = data.layers[LAYER_LOG1P].copy(), "cp10k"
        X = sp.csr_matrix(X, dtype=np.float32)
        X.data = np.expm1(X.data)
    report = LabelReport(_map_labels(labels[keep]), int((~keep).sum()), values)
    ids = dict(zip(report.table["label"], report.table["ontology_id"]))
    names = dict(zip(report.table["label"], report.table["ontology_label"]))
    lab = labels[keep].to_numpy()
    obs = pd.DataFrame(
        {
            "tissue": tissues[keep].to_numpy(),
            "cell_type": lab,
            "cell_type_ontology_term_id": [ids[x] for x in lab],
            "cell_type_ontology_label": [names[x] for x in lab],
            "cell_type_original": lab,
            "donor": donors[keep].replace("", _UNKNOWN).to_numpy(),
            "technology": (
                _column(data, "technology", "technology").replace("", _UNKNOWN).to_numpy()
                if "technology" in data.obs
                else _UNKNOWN
            ),
            "dataset": name,
        },
        index=[f"{name}:{c}" for c in data.obs_names],
    )
    for col in obs.columns:
        obs[col] = obs[col].astype("category")
    var = pd.DataFrame(index=data.var_names.copy())
    var[VAR_ENSEMBL] = (
        data.var[VAR_ENSEMBL].astype(str).replace("nan", "").to_numpy()
        if VAR_ENSEMBL in data.var
        else ""
    )
    var[f"measured_in_{name}"] = True
    out = AnnData(X=sp.csr_matrix(X, dtype=np.float32), obs=obs, var=var)
    out.uns["scagent_dataset"] = {"name": name, "values": values}
    return out, report
