"""Names of every field scagent writes into an AnnData, in one place."""

from __future__ import annotations

#: ``.uns`` key holding everything scagent records about an object.
UNS_KEY = "scagent"

#: Layer with the canonical model input: log1p of counts per 10,000.
LAYER_LOG1P = "scagent_log1p_cp10k"
#: Layer with raw counts, when they exist.
LAYER_COUNTS = "counts"

#: ``.var`` column: the identifier the input file used for each gene.
VAR_INPUT_ID = "scagent_input_id"
#: ``.var`` column: whether the gene is in scagent's gene table.
VAR_RECOGNISED = "scagent_recognised"
#: ``.var`` column: Ensembl id of a recognised gene.
VAR_ENSEMBL = "ensembl_id"

#: ``.obsm`` key for features that are not genes (antibody capture, CRISPR guides...).
OBSM_OTHER_FEATURES = "scagent_other_features"

#: Target sum of the canonical normalisation.
TARGET_SUM = 1e4

#: Harmonised ``.obs`` columns of a reference.
REFERENCE_OBS = (
    "tissue",
    "cell_type",
    "cell_type_ontology_term_id",
    "donor",
    "technology",
    "dataset",
)

#: ``.obsm`` key of the pretrained-space embedding (the paper's F_g).
OBSM_EMBED = "X_scagent"
#: ``.obsm`` key of the plugin-tuned embedding (the paper's F_s).
OBSM_EMBED_TUNED = "X_scagent_tuned"

#: ``.obs`` keys written by ``sa.tl.annotate``.
OBS_TISSUE = "scagent_tissue"
OBS_TISSUE_CONF = "scagent_tissue_confidence"
OBS_TYPE = "scagent_cell_type"
OBS_ONTOLOGY = "scagent_cell_type_ontology_id"
OBS_CONF = "scagent_confidence"
OBS_AGREEMENT = "scagent_agreement"
OBS_CONSENSUS = "scagent_cell_type_consensus"
OBS_CONSENSUS_ID = "scagent_cell_type_consensus_ontology_id"
OBS_CLUSTER = "scagent_cluster"
OBS_SIMILARITY = "scagent_reference_similarity"
OBS_TYPE_PER_CELL = "scagent_cell_type_per_cell"
OBS_VOTE_GROUP = "scagent_vote_group"
#: Prefixes of each expert's own call and probability (``scagent_call_reference``...).
OBS_CALL_PREFIX = "scagent_call_"
OBS_PROB_PREFIX = "scagent_prob_"
#: ``.obsm`` key of the fused probabilities over the reference classes.
OBSM_PROBS = "scagent_probabilities"
