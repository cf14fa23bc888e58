"""Weight-based attacks: they read the row sums of the classifier's weight gradient.

By identity I2 (Chapter 3), ``g_c = sum_j dL/dW_cj = (1/N) sum_k (p_kc - y_kc) 1^T h_k``: negative for
present classes only when the features are non-negative. One file per attack: :mod:`.llg` (LLG),
:mod:`.llg_star` (LLG*) and :mod:`.llg_plus` (LLG+). Reference: A. Wainakh et al., "User-Level Label
Leakage from Gradients in Federated Learning", PoPETs 2022.
"""
