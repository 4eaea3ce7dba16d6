"""Tissue names from users mapped onto the tissues scagent knows.

Known tissues are those with a cell-type plugin (:meth:`scagent.plugins.PluginRegistry.tissues`).
Words that name a tissue scagent has no plugin for ("liver", "bone marrow") are still
recognised, so that a request naming one is reported as an unknown tissue instead of being
annotated as if no tissue had been named.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["TISSUE_WORDS", "canonical_tissue", "find_tissues", "known_tissues"]

#: canonical name -> words and phrases that name it (lower case).
TISSUE_WORDS: dict[str, tuple[str, ...]] = {
    "blood": (
        "blood",
        "pbmc",
        "pbmcs",
        "peripheral blood mononuclear cells",
        "peripheral blood",
        "whole blood",
        "buffy coat",
    ),
    "brain": (
        "brain",
        "cortex",
        "cortical",
        "cerebral",
        "hippocampus",
        "hippocampal",
        "cerebellum",
        "neocortex",
        "central nervous system",
        "cns",
    ),
    "colon": ("colon", "colonic", "colorectal", "large intestine", "large bowel"),
    "endometrium": ("endometrium", "endometrial", "uterus", "uterine", "womb"),
    "kidney": ("kidney", "kidneys", "renal", "nephron"),
    "lung": ("lung", "lungs", "pulmonary", "airway", "airways", "alveolar", "bronchial"),
    "pancreas": ("pancreas", "pancreatic", "islet", "islets", "islets of langerhans"),
    # recognised, but without a plugin
    "bone_marrow": ("bone marrow", "bone_marrow", "bone-marrow", "marrow"),
    "liver": ("liver", "hepatic"),
    "heart": ("heart", "cardiac", "myocardium"),
    "skin": ("skin", "dermis", "epidermis"),
    "spleen": ("spleen", "splenic"),
    "thymus": ("thymus",),
    "lymph_node": ("lymph node", "lymph nodes", "lymph_node"),
    "muscle": ("muscle", "skeletal muscle"),
    "stomach": ("stomach", "gastric"),
    "small_intestine": ("small intestine", "ileum", "jejunum", "duodenum"),
    "breast": ("breast", "mammary"),
    "prostate": ("prostate",),
    "testis": ("testis", "testes", "testicular"),
    "ovary": ("ovary", "ovarian"),
    "retina": ("retina", "retinal", "eye"),
    "adipose": ("adipose", "fat tissue"),
    "bladder": ("bladder",),
    "esophagus": ("esophagus", "oesophagus"),
    "placenta": ("placenta", "placental"),
    "tonsil": ("tonsil", "tonsils"),
}


@lru_cache(maxsize=1)
def known_tissues() -> tuple[str, ...]:
    """Tissues with a cell-type plugin in the user's registry (cached per process)."""
    from ..plugins import default_registry

    return tuple(default_registry().tissues())


def _pattern(phrase: str) -> re.Pattern:
    words = r"[\s_\-]+".join(re.escape(w) for w in re.split(r"[\s_\-]+", phrase))
    return re.compile(rf"(?<![a-z0-9]){words}(?![a-z0-9])", re.IGNORECASE)


_PATTERNS = [
    (name, _pattern(phrase))
    for name, phrases in TISSUE_WORDS.items()
    for phrase in sorted(phrases, key=len, reverse=True)
]


def canonical_tissue(name: str | None) -> str | None:
    """The canonical tissue for a user's or an LLM's tissue name, ``None`` for empty input.

    Case, spaces, hyphens and underscores do not matter, and synonyms map onto their tissue
    ("PBMC" -> ``"blood"``, "Bone Marrow" -> ``"bone_marrow"``). A name no synonym matches is
    returned normalised (lower case, words joined by ``_``), so validation can report it.
    """
    if name is None:
        return None
    text = re.sub(r"[\s_\-]+", " ", str(name).strip().lower()).strip(" .,;:!?'\"")
    if not text or text in ("null", "none", "unknown", "n/a"):
        return None
    for canonical, phrases in TISSUE_WORDS.items():
        if text == canonical.replace("_", " ") or text in phrases:
            return canonical
    for canonical, pattern in _PATTERNS:  # "human lung tissue" -> lung
        if pattern.search(text):
            return canonical
    return text.replace(" ", "_")


def find_tissues(text: str) -> list[str]:
    """Canonical tissues named in ``text``, in the order they first appear."""
    hits: list[tuple[int, str]] = []
    for canonical, pattern in _PATTERNS:
        m = pattern.search(text)
        if m:
            hits.append((m.start(), canonical))
    seen: dict[str, None] = {}
    for _, name in sorted(hits):
        seen.setdefault(name)
    return list(seen)
