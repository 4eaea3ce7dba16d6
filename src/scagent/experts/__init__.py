"""Annotation experts, each giving probabilities over Cell Ontology terms, and their fusion.

One module per expert (``_reference``, ``_markers``, ``_plugin``), one shape for all
(:class:`ExpertCall`), and the fusion code (``_fusion``) that knows none of their insides.
"""

from __future__ import annotations

from ._base import ExpertCall
from ._evidence import Gathered, gather_evidence
from ._fusion import EXPERTS, Evidence, Fused, FusionParams, alone, fit_fusion, fuse
from ._markers import MarkerScores, marker_expert, score_markers, tissue_evidence
from ._plugin import plugin_expert, tissue_votes
from ._reference import ReferenceModel, fit_reference_model, reference_expert
from ._structure import QueryStructure, query_structure
from ._tissue import ACROSS, TissueDecision, decide_tissue

__all__ = [
    "ACROSS",
    "EXPERTS",
    "Evidence",
    "ExpertCall",
    "Fused",
    "FusionParams",
    "Gathered",
    "MarkerScores",
    "QueryStructure",
    "ReferenceModel",
    "TissueDecision",
    "alone",
    "decide_tissue",
    "fit_fusion",
    "fit_reference_model",
    "fuse",
    "gather_evidence",
    "marker_expert",
    "plugin_expert",
    "query_structure",
    "reference_expert",
    "score_markers",
    "tissue_evidence",
    "tissue_votes",
]
