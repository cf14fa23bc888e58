"""Bias-based attacks: they read the classifier's bias gradient.

By identity I1 (Chapter 3), ``db_c = (sum_k p_kc - n_c) / N``; a negative entry proves the class is
present. One file per attack: :mod:`.llbg` (LLBG, Gat & Sharif, AISec 2024), :mod:`.ebi` (its
empirical-impact baseline) and :mod:`.ilrg` (iLRG, Ma et al., ICLR 2023).
"""
