"""The study: attacks run over clients, settings and grids, scored, stored with their provenance.

- :mod:`~leakage_core.study.experiments` — one client's batches attacked (:func:`attack_clients`);
- :mod:`~leakage_core.study.grid` — :class:`Setting` and :func:`run_grid` (cached, parallel, resumable),
  :func:`score` with the spread over clients;
- :mod:`~leakage_core.study.grids` — the book's grids (settings, attacks, clients, study data);
- :mod:`~leakage_core.study.results` — their CSV files in ``results/``, read back and recomputed;
- :mod:`~leakage_core.study.tables` — the tables the study chapters show;
- :mod:`~leakage_core.study.run` — ``python -m leakage_core.study``: compute the grids with provenance;
- :mod:`~leakage_core.study.costs` — measured training and attack times.
"""

from __future__ import annotations

from .costs import REAL_SIZE, cpu_info, extrapolate_costs, measure_costs
from .experiments import (
    add_advantage,
    attack_batches,
    attack_client,
    attack_clients,
    batch_updates,
    check_unseen,
    client_scores,
    client_spread,
    count_all,
    mean_scores,
    needs_aux,
    prepare_attacks,
    run_attacks,
)
from .grid import (
    SETTING_COLUMNS,
    STATES,
    Setting,
    add_blind_references,
    cache_file,
    paper_settings,
    run_grid,
    score,
    with_setting,
)
from .grids import (
    ATTACKED,
    AUX_ATTACKS,
    BOOK_ATTACKS,
    LDP_VARIANTS,
    MULTI_STEP,
    N_SUBJECTS,
    PAPER_CODE_ATTACKS,
    SHORT_MINUTES,
    STRONGER_ATTACKS,
    STRONGER_PROFILES,
    STRONGER_STEPS,
    TRAIN_EPOCHS,
    TRAIN_LR,
    TRAINING_LENGTH_EPOCHS,
    TRAINING_LENGTH_PROFILES,
    StudyGrid,
    study_dataset,
    study_grids,
)
from .results import from_tidy, load_results, provenance, recompute_slice, to_tidy
from .run import add_blind_to_results, run_study
from .tables import TRAINING_LENGTH_METRICS, distinct_labels_table, leakage_table, training_length_table

__all__ = [
    "REAL_SIZE",
    "cpu_info",
    "extrapolate_costs",
    "measure_costs",
    "add_advantage",
    "attack_batches",
    "attack_client",
    "attack_clients",
    "batch_updates",
    "check_unseen",
    "client_scores",
    "client_spread",
    "count_all",
    "mean_scores",
    "needs_aux",
    "prepare_attacks",
    "run_attacks",
    "SETTING_COLUMNS",
    "STATES",
    "Setting",
    "add_blind_references",
    "cache_file",
    "paper_settings",
    "run_grid",
    "score",
    "with_setting",
    "ATTACKED",
    "AUX_ATTACKS",
    "BOOK_ATTACKS",
    "LDP_VARIANTS",
    "MULTI_STEP",
    "N_SUBJECTS",
    "PAPER_CODE_ATTACKS",
    "SHORT_MINUTES",
    "STRONGER_ATTACKS",
    "STRONGER_PROFILES",
    "STRONGER_STEPS",
    "TRAIN_EPOCHS",
    "TRAIN_LR",
    "TRAINING_LENGTH_EPOCHS",
    "TRAINING_LENGTH_METRICS",
    "TRAINING_LENGTH_PROFILES",
    "StudyGrid",
    "add_blind_to_results",
    "distinct_labels_table",
    "from_tidy",
    "leakage_table",
    "load_results",
    "provenance",
    "recompute_slice",
    "run_study",
    "study_dataset",
    "study_grids",
    "to_tidy",
    "training_length_table",
]
