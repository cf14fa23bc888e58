"""Count attacks: label counts solved in closed form from the classifier's gradient and the model's statistics.

By identity I2 (Chapter 3), ``sum_j dL/dW_cj = (1/N) sum_k (p_kc - y_kc) O_k`` with ``O_k`` the sum of window
``k``'s classifier input; replacing ``O_k`` and ``p_k`` by the server's estimates ``Obar`` and ``pbar`` gives
the counts directly. One file per attack: :mod:`.geng` (Geng et al. 2021, FedSGD), :mod:`.dimitrov`
(Dimitrov et al. 2022, multi-step FedAvg), both reading the weight row sums by default (``row="bias"``
reads the bias row instead), and :mod:`.lmmse` (our own: the Bayes-linear estimate of each count given
the bias or weight-row statistic, its coefficients simulated from the server's auxiliary windows), all in
the ``"count"`` family; :mod:`.aware` wraps any registered attack and de-biases its counts for the defence the
update records (a server that knows the client's defence).
"""
