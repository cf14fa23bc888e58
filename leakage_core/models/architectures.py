"""The two HAR classifiers of the paper: DeepConvLSTM and TinyHAR.

Contract: both take windows shaped ``(B, T, channels)`` (float32; another shape raises ``ValueError``), end in
``self.classifier`` — a ``torch.nn.Linear``, the layer every attack in this book reads, with a bias unless built
with ``bias=False`` (the defence of Chapter 15) — and expose
``features(x)``, exactly the tensor fed into the classifier (after dropout). ``dp_compatible=True`` builds the
variant DP-SGD trains (per-window gradients exact, see each class); it needs Opacus, imported only then.
References: F. J. Ordóñez and D. Roggen, "Deep Convolutional and LSTM Recurrent Neural Networks for Multimodal
Wearable Activity Recognition", Sensors 2016; Y. Zhou et al., "TinyHAR: A Lightweight Deep Learning Model
Designed for Human Activity Recognition", ISWC 2022.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MODELS: tuple[str, ...] = ("deepconvlstm", "tinyhar")


class _HARModel(nn.Module):
    """Shared interface: input checks, ``features`` and ``forward``."""

    n_channels: int
    n_classes: int
    window_size: int
    classifier: nn.Linear

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.window_size or x.shape[2] != self.n_channels:
            raise ValueError(
                f"{type(self).__name__} expects windows shaped (B, {self.window_size}, {self.n_channels}), "
                f"got {tuple(x.shape)}; build the model with the dataset's window_size and n_channels."
            )
        return x.to(self.classifier.weight.dtype)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, C)`` = ``classifier(features(x))``."""
        return self.classifier(self.features(x))


class DeepConvLSTM(_HARModel):
    """DeepConvLSTM (Ordonez & Roggen, 2016) with the paper's hyperparameters.

    Four ``Conv2d(., 64, (9, 1)) + ReLU`` layers without padding (50 -> 18
    time steps), a 2-layer LSTM (``64 * channels -> 128``), the last time step, ``Dropout(0.5)`` and
    ``Linear(128, C)`` (``bias=False``: without its bias). 705,747 parameters for WEAR (12 channels,
    19 classes), 409,545 for Wetlab.

    ``dp_compatible=True`` (the DP-SGD variant): the LSTM is Opacus's ``DPLSTM`` (``opacus/layers/dp_rnn.py``
    in github.com/pytorch/opacus), the same LSTM equations and parameter shapes written with linear layers whose
    per-window gradients Opacus computes; nothing else changes, so the parameter count is the same (705,747 and
    409,545), initialised the same way (not to the same values).
    """

    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        window_size: int = 50,
        conv_filters: int = 64,
        kernel: int = 9,
        lstm_hidden: int = 128,
        lstm_layers: int = 2,
        dropout: float = 0.5,
        bias: bool = True,
        dp_compatible: bool = False,
    ) -> None:
        super().__init__()
        _check_sizes(n_channels, n_classes, window_size)
        self.dp_compatible = _check_flag("dp_compatible", dp_compatible)
        if window_size - 4 * (kernel - 1) < 1:
            raise ValueError(f"window_size={window_size} is too short for 4 convolutions of kernel {kernel}.")
        self.n_channels, self.n_classes, self.window_size = n_channels, n_classes, window_size
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(1 if i == 0 else conv_filters, conv_filters, (kernel, 1)), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        self.lstm = _lstm(conv_filters * n_channels, lstm_hidden, lstm_layers, self.dp_compatible)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(lstm_hidden, n_classes, bias=_check_bias(bias))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 128)``: the dropped-out last LSTM output, i.e. the classifier's input."""
        x = self._check_input(x).unsqueeze(1)  # (B, 1, T, ch)
        x = self.conv(x)  # (B, F, T', ch)
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', F * ch)
        out, _ = self.lstm(x)
        return self.dropout(out[:, -1])


class TinyHAR(_HARModel):
    """TinyHAR (Zhou et al., ISWC 2022), a lightweight attention-based HAR model.

    Per-channel temporal convolutions (4 layers, ``filters`` maps, kernel 9,
    strides 1, 2, 1, 2 in time, BatchNorm, ReLU), cross-channel interaction by self-attention at every
    time step, cross-channel fusion by a fully connected layer, a temporal LSTM, attention-weighted
    temporal aggregation, ``Dropout(0.5)`` and ``Linear(2 * filters, C)`` (``bias=False``: without its
    bias). Written from the paper's description; sizes follow the seed paper's configuration (20 filters).

    ``dp_compatible=True`` (the DP-SGD variant) changes three things, and no layer size:

    - ``BatchNorm2d`` becomes ``GroupNorm(gcd(32, filters), filters)`` (4 groups of 5 maps for 20 filters), what
      Opacus's ``ModuleValidator.fix`` puts in its place (``opacus/validators/batch_norm.py``): BatchNorm mixes
      the windows of a batch, so a window has no gradient of its own;
    - the channel self-attention keeps the window axis first: the standard forward folds the time steps into the
      batch axis (``(B * T', channels, filters)`` tokens), which no per-sample gradient method of Opacus can
      undo; the variant computes the same encoder layer on ``(B, T', channels, filters)`` tensors
      (:class:`_ChannelAttention`: the same function and parameter shapes, tested);
    - the LSTM is Opacus's ``DPLSTM`` (``opacus/layers/dp_rnn.py``), as in :class:`DeepConvLSTM`.

    GroupNorm has the same affine parameters as BatchNorm (and no running statistics), so the parameter count
    is unchanged: 38,220 for WEAR (12 channels, 19 classes), 30,610 for Wetlab (3 channels, 9 classes).
    """

    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        window_size: int = 50,
        filters: int = 20,
        kernel: int = 9,
        strides: tuple[int, ...] = (1, 2, 1, 2),
        dropout: float = 0.5,
        bias: bool = True,
        dp_compatible: bool = False,
    ) -> None:
        super().__init__()
        _check_sizes(n_channels, n_classes, window_size)
        self.dp_compatible = dp = _check_flag("dp_compatible", dp_compatible)
        self.n_channels, self.n_classes, self.window_size = n_channels, n_classes, window_size
        layers: list[nn.Module] = []
        for i, s in enumerate(strides):
            layers += [
                nn.Conv2d(1 if i == 0 else filters, filters, (kernel, 1), stride=(s, 1), padding=(kernel // 2, 0)),
                nn.ReLU(),
                nn.GroupNorm(math.gcd(32, filters), filters) if dp else nn.BatchNorm2d(filters),
            ]
        self.conv = nn.Sequential(*layers)
        self.channel_attention = (
            _ChannelAttention(filters)
            if dp
            else nn.TransformerEncoderLayer(
                d_model=filters, nhead=1, dim_feedforward=2 * filters, dropout=0.0, batch_first=True
            )
        )
        self.fusion = nn.Sequential(nn.Linear(n_channels * filters, 2 * filters), nn.ReLU())
        self.lstm = _lstm(2 * filters, 2 * filters, 1, dp)
        self.temporal_score = nn.Linear(2 * filters, 1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * filters, n_classes, bias=_check_bias(bias))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2 * filters)``: attention-aggregated LSTM states after dropout."""
        x = self._check_input(x).unsqueeze(1)  # (B, 1, T, ch)
        x = self.conv(x)  # (B, F, T', ch)
        b, f, t, ch = x.shape
        x = x.permute(0, 2, 3, 1)  # (B, T', ch, F): channels as tokens, per time step
        if self.dp_compatible:  # the window axis stays first
            x = self.channel_attention(x)
        else:
            x = self.channel_attention(x.reshape(b * t, ch, f))
        x = self.fusion(x.reshape(b, t, ch * f))  # (B, T', 2F)
        out, _ = self.lstm(x)
        weights = torch.softmax(self.temporal_score(out), dim=1)  # (B, T', 1)
        return self.dropout((weights * out).sum(dim=1))


class _ChannelAttention(nn.Module):
    """TinyHAR's channel self-attention on ``(B, T', channels, F)`` tensors, the window axis first.

    One post-norm Transformer encoder layer with one head, a feed-forward part ``F -> 2F -> F`` (ReLU) and no
    dropout: the function ``torch.nn.TransformerEncoderLayer(d_model=F, nhead=1, dim_feedforward=2F,
    dropout=0, batch_first=True)`` computes on the ``(B * T', channels, F)`` tokens of the standard TinyHAR,
    with the same parameter shapes (``in_proj`` is its ``self_attn.in_proj_*``, rows q, k, v; ``out_proj``,
    ``linear1``, ``linear2``, ``norm1``, ``norm2`` its namesakes; equality tested). Written with linear and
    LayerNorm layers only, whose per-window gradients Opacus computes on inputs of any shape.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, 2 * d_model)
        self.linear2 = nn.Linear(2 * d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., tokens, F) -> (..., tokens, F)``: attention among the tokens of every leading index."""
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        x = self.norm1(x + self.out_proj(attention @ v))
        return self.norm2(x + self.linear2(torch.relu(self.linear1(x))))


def _lstm(input_size: int, hidden_size: int, num_layers: int, dp_compatible: bool) -> nn.Module:
    """A batch-first LSTM: ``torch.nn.LSTM``, or Opacus's ``DPLSTM`` (same equations and parameter shapes)."""
    if not dp_compatible:
        return nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
    from opacus.layers import DPLSTM

    return DPLSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return value


def _check_sizes(n_channels: int, n_classes: int, window_size: int) -> None:
    for name, v, lo in (("n_channels", n_channels, 1), ("n_classes", n_classes, 2), ("window_size", window_size, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}.")


def _check_bias(bias: object) -> bool:
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False (whether the classifier has a bias), got {bias!r}.")
    return bias


def init_paper(model: nn.Module) -> nn.Module:
    """Xavier-normal weights and zero biases for every conv, linear, LSTM and attention layer.

    BatchNorm keeps its default (weight 1, bias 0).
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            continue
        for name, p in module.named_parameters(recurse=False):
            if p.ndim >= 2:
                nn.init.xavier_normal_(p)
            elif "bias" in name:
                nn.init.zeros_(p)
    return model


def build_model(name: str, n_channels: int, n_classes: int, seed: int = 0, **kwargs) -> nn.Module:
    """Build ``"deepconvlstm"`` or ``"tinyhar"`` with the paper's initialisation, seeded.

    Introduced in Chapter 1. The global torch RNG is left untouched.

    Parameters
    ----------
    name : {"deepconvlstm", "tinyhar"}
    n_channels, n_classes : int
        From the dataset (``data.n_channels``, ``data.n_classes``).
    seed : int
        Seed of the initialisation.
    **kwargs
        Passed to the model class (e.g. ``window_size``, ``bias=False`` for a classifier without bias, or
        ``dp_compatible=True`` for the variant DP-SGD trains: per-window gradients exact, see the class).
    """
    classes = {"deepconvlstm": DeepConvLSTM, "tinyhar": TinyHAR}
    key = str(name).lower()
    if key not in classes:
        raise ValueError(f"unknown model {name!r}; choose one of {MODELS}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = init_paper(classes[key](n_channels, n_classes, **kwargs))
    return model


@torch.no_grad()
def zero_last_layer(model: nn.Module) -> nn.Module:
    """Set the classifier's weight and bias (if it has one) to zero (all classes equally likely: p = 1/C).

    Introduced in Chapter 3; the exact oracle of the bias-based attacks.
    """
    model.classifier.weight.zero_()
    if model.classifier.bias is not None:
        model.classifier.bias.zero_()
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Introduced in Chapter 16.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
