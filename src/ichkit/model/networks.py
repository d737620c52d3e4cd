"""Networks: the slice-encoder registry and the series model (2.5D CNN + bidirectional GRU).

The series model takes Hounsfield units of a series already cropped to the head
and resized (:func:`ichkit.model.preprocess_volume`), shape (batch, slices, H, W),
and does the rest itself, so that an ONNX export is self-contained:

1. each slice is windowed through every window of the configuration (values in
   [0, 1]) and stacked with its ``context`` neighbours on each side (edge
   slices repeat), giving ``(2 * context + 1) * len(windows)`` channels;
2. a 2D MONAI encoder turns each slice into an embedding;
3. a bidirectional GRU runs over the series' embeddings;
4. an image head gives six logits per slice (slice embedding + GRU state); the
   exam logits are the highest image logit plus a learned correction from the
   masked max and mean of the GRU states (zero at initialisation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ichkit.errors import ConfigError
from ichkit.labels import LABELS
from ichkit.model.config import POOLS

if TYPE_CHECKING:
    from ichkit.model.config import TrainConfig

__all__ = [
    "ENCODERS",
    "DistBatchNorm2d",
    "EncoderSpec",
    "SeriesModel",
    "SliceEncoder",
    "build_encoder",
    "build_model",
]


class SliceEncoder(nn.Module):
    """A 2D CNN split into a feature-map body and global pooling.

    Parameters
    ----------
    body
        Maps (N, C, H, W) to a feature map (N, D, h, w); Grad-CAM hooks its output.
    features
        D, the body's channels.
    pool
        ``avg`` (global average), ``max`` or ``avgmax`` (both, concatenated:
        the embedding has 2 D features). A lesion filling one cell of the
        final 4 × 4 map is a sixteenth of an average but all of a maximum.
    """

    def __init__(self, body: nn.Module, features: int, pool: str = "avg") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ConfigError(
                f"unknown pool {pool!r}; expected one of {', '.join(POOLS)}",
                field="pool",
                value=pool,
            )
        self.body = body
        self.pool_kind = pool
        self.features = features * (2 if pool == "avgmax" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed slices: (N, C, H, W) → (N, D) (2 D with ``avgmax``)."""
        maps: torch.Tensor = self.body(x)
        if self.pool_kind == "avg":
            return maps.mean(dim=(2, 3))
        if self.pool_kind == "max":
            return maps.amax(dim=(2, 3))
        return torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder: how to build it and what it is for."""

    name: str
    description: str
    build: Callable[[int, str], SliceEncoder]


class DistBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every DDP process (CPU and GPU alike).

    In a single process, or in eval mode, it is a plain ``BatchNorm2d`` (same
    weights, same state-dict keys, exports to ONNX as such). In training under
    an initialised process group it all-reduces the per-channel sums (through
    ``torch.distributed.nn``, so gradients flow), so the statistics are those
    of the whole global batch: DDP then computes what one process would.
    ``torch.nn.SyncBatchNorm`` does the same but only on GPUs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise (N, C, H, W)."""
        dist = torch.distributed
        if not (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        ):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        xf = x.float()
        count = torch.tensor(
            [float(x.shape[0] * x.shape[2] * x.shape[3])], device=x.device, dtype=torch.float32
        )
        stats = torch.cat([xf.sum(dim=(0, 2, 3)), (xf * xf).sum(dim=(0, 2, 3)), count])
        stats = all_reduce(stats)  # type: ignore[no-untyped-call]
        c = self.num_features
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp(min=0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                unbiased = var * n / (n - 1).clamp(min=1.0)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)  # type: ignore[union-attr]
                if self.num_batches_tracked is not None:
                    self.num_batches_tracked.add_(1)
        y = (xf - mean.view(1, -1, 1, 1)) * torch.rsqrt(var.view(1, -1, 1, 1) + self.eps)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        out: torch.Tensor = y.to(x.dtype)
        return out


def _convert_norm(module: nn.Module, norm: str, groups: int) -> nn.Module:
    """Replace every BatchNorm2d by a :class:`DistBatchNorm2d` or a GroupNorm."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, DistBatchNorm2d):
            if norm == "group":
                g = groups if child.num_features % groups == 0 else 1
                new: nn.Module = nn.GroupNorm(g, child.num_features)
            else:
                new = DistBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum)
                new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            _convert_norm(child, norm, groups)
    return module


def _monai_resnet(
    in_channels: int,
    *,
    layers: list[int],
    widths: list[int],
    groups: int,
    norm: str,
    stem_pool: bool = True,
    dilate_last: bool = False,
    patch_stem: bool = False,
) -> SliceEncoder:
    """A MONAI ResNet body.

    Without ``stem_pool`` every stage's map has twice the side. With
    ``dilate_last`` the last stage keeps the side of the one before (stride 1)
    and its later convolutions are dilated by 2 to keep their field of view
    (a dilated ResNet of output stride 16): only the last stage, the
    widest and cheapest per weight on a CPU, works on the larger map.
    """
    from monai.networks.nets import ResNet  # type: ignore[attr-defined]

    net = ResNet(
        "basic",
        layers,
        widths,
        spatial_dims=2,
        n_input_channels=in_channels,
        conv1_t_size=3,
        conv1_t_stride=2,
        feed_forward=False,
        bias_downsample=False,  # a bias before a norm layer only adds Adam noise
    )
    if dilate_last:
        _dilate_stage(net.layer4)
    if patch_stem:
        # a 4x4 convolution of stride 4 in place of the strided 3x3 and the
        # max-pool: the same 1/4 side, without a full-resolution feature map
        conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=4, stride=4, bias=False)
        stem = [conv1, net.bn1, net.act]
    else:
        stem = [net.conv1, net.bn1, net.act, *([net.maxpool] if stem_pool else [])]
    body = nn.Sequential(*stem, net.layer1, net.layer2, net.layer3, net.layer4)
    return SliceEncoder(_convert_norm(body, norm, groups), widths[-1])


def _dilate_stage(stage: nn.Module) -> None:
    """Turn a strided ResNet stage into a dilated one of stride 1 (same weights' shapes).

    For MONAI's basic ``ResNetBlock`` with a convolution shortcut (type B, as
    :func:`_monai_resnet` builds them): the strided 3x3 convolution is each
    block's ``conv1``. Other block types are refused rather than mis-dilated.
    """
    from monai.networks.nets.resnet import ResNetBlock

    for i, block in enumerate(stage.children()):
        if not isinstance(block, ResNetBlock) or not (
            block.downsample is None or isinstance(block.downsample, nn.Sequential)
        ):
            raise TypeError(f"cannot dilate {type(block).__name__}: basic blocks only")
        for name, conv in block.named_modules():
            if not isinstance(conv, nn.Conv2d):
                continue
            conv.stride = (1, 1)
            # the block's first 3x3 convolution sees the previous stage's
            # spacing; every later one the dilated spacing of this stage
            if conv.kernel_size == (3, 3) and (i > 0 or not name.endswith("conv1")):
                conv.dilation = (2, 2)
                conv.padding = (2, 2)


def _monai_senet(in_channels: int, norm: str, *, depth: int) -> SliceEncoder:
    from monai.networks.nets import (  # type: ignore[attr-defined]
        SEResNext50,
        SEResNext101,
    )

    cls = SEResNext101 if depth == 101 else SEResNext50
    net = cls(spatial_dims=2, in_channels=in_channels, num_classes=1, pretrained=False)
    features: nn.Module = net.features  # type: ignore[assignment]
    return SliceEncoder(_convert_norm(features, norm, 32), 2048)


def _monai_densenet(in_channels: int, norm: str) -> SliceEncoder:
    from monai.networks.nets import DenseNet121  # type: ignore[attr-defined]

    net = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=1, pretrained=False)
    body = _convert_norm(nn.Sequential(net.features, nn.ReLU(inplace=False)), norm, 16)
    return SliceEncoder(body, 1024)


#: The layout of ``small`` (and ``small-fine``, the same without the stem's max-pool).
_SMALL: Mapping[str, Any] = MappingProxyType(
    {"layers": [1, 1, 1, 1], "widths": [16, 32, 64, 128], "groups": 8}
)

#: Registered slice encoders (MONAI networks, random initialisation: ichkit
#: downloads no weights). Their BatchNorms become :class:`DistBatchNorm2d`
#: (statistics over the global batch, so DDP equals one process) or GroupNorm.
ENCODERS: Mapping[str, EncoderSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            EncoderSpec(
                "tiny",
                "MONAI ResNet, 1 block per stage, widths 8-64 (tests)",
                lambda c, n: _monai_resnet(
                    c, layers=[1, 1, 1, 1], widths=[8, 16, 32, 64], groups=4, norm=n
                ),
            ),
            EncoderSpec(
                "small",
                "MONAI ResNet, 1 block per stage, widths 16-128, ~0.3M weights (CPU)",
                lambda c, n: _monai_resnet(c, **_SMALL, norm=n),
            ),
            EncoderSpec(
                "small-fine",
                "small without the stem's max-pool: maps of twice the side (1/16 of the input "
                "at the end), 1.5-2.7x the time per epoch on 2 CPU cores",
                lambda c, n: _monai_resnet(c, **_SMALL, norm=n, stem_pool=False),
            ),
            EncoderSpec(
                "small-dilated",
                "small with a dilated last stage: final map of twice the side (1/16 of the "
                "input), 1.2-1.3x the time per step on 2 CPU cores",
                lambda c, n: _monai_resnet(c, **_SMALL, norm=n, dilate_last=True),
            ),
            EncoderSpec(
                "small-dilated-patch",
                "small-dilated with a 4x4 stride-4 stem (no max-pool): a faster step, less "
                "accurate on intraventricular bleeds (benchmarks/RESULTS.md)",
                lambda c, n: _monai_resnet(c, **_SMALL, norm=n, dilate_last=True, patch_stem=True),
            ),
            EncoderSpec(
                "medium",
                "MONAI ResNet-18 layout, widths 32-256, ~2.8M weights (GPU or long CPU)",
                lambda c, n: _monai_resnet(
                    c, layers=[2, 2, 2, 2], widths=[32, 64, 128, 256], groups=8, norm=n
                ),
            ),
            EncoderSpec(
                "densenet121",
                "MONAI DenseNet121, ~7M weights (GPU)",
                _monai_densenet,
            ),
            EncoderSpec(
                "seresnext50",
                "MONAI SEResNext50 32x4d, ~26M weights (GPU)",
                lambda c, n: _monai_senet(c, n, depth=50),
            ),
            EncoderSpec(
                "seresnext101",
                "MONAI SEResNext101 32x4d, ~47M weights (RSNA 2019 1st-place encoder; GPU)",
                lambda c, n: _monai_senet(c, n, depth=101),
            ),
        )
    }
)


def build_encoder(
    name: str, in_channels: int, *, norm: str = "batch", pool: str = "avg"
) -> SliceEncoder:
    """Build a registered slice encoder.

    ``norm`` is ``batch`` (:class:`DistBatchNorm2d`: global-batch statistics
    under DDP) or ``group`` (GroupNorm: batch-independent); ``pool`` is the
    global pooling (:data:`POOLS`).

    Raises
    ------
    ConfigError
        ``name`` is not in :data:`ENCODERS` (the message lists them).
    """
    try:
        spec = ENCODERS[name]
    except KeyError as err:
        raise ConfigError(
            f"unknown encoder {name!r}; expected one of {', '.join(ENCODERS)}",
            field="encoder",
            value=name,
        ) from err
    if norm not in ("batch", "group"):
        raise ConfigError(
            f"unknown norm {norm!r}; expected batch or group", field="norm", value=norm
        )
    encoder = spec.build(in_channels, norm)
    return SliceEncoder(encoder.body, encoder.features, pool) if pool != "avg" else encoder


#: Largest encoder input (bytes of float32) embedded in one piece when a CPU
#: model infers without gradients (:meth:`SeriesModel.forward`): glibc's
#: malloc hands blocks above 32 MiB to mmap, so each one is page-faulted afresh.
CPU_CHUNK_BYTES = 16 * 2**20


class SeriesModel(nn.Module):
    """The series model: windows + neighbouring slices → encoder → BiGRU → two heads.

    Parameters
    ----------
    encoder
        Name in :data:`ENCODERS`.
    windows
        (center, width) pairs in HU, one channel group each.
    context
        Neighbouring slices on each side.
    hidden
        GRU hidden size per direction.
    n_labels
        Outputs per image and per exam (six: :data:`ichkit.labels.LABELS`).
    """

    window_low: torch.Tensor
    window_width: torch.Tensor
    offsets: torch.Tensor

    def __init__(
        self,
        *,
        encoder: str,
        windows: tuple[tuple[float, float], ...],
        context: int,
        hidden: int,
        norm: str = "batch",
        pool: str = "avg",
        n_labels: int = len(LABELS),
    ) -> None:
        super().__init__()
        centers = torch.tensor([c for c, _ in windows], dtype=torch.float32)
        widths = torch.tensor([w for _, w in windows], dtype=torch.float32)
        self.register_buffer("window_low", (centers - widths / 2).view(1, 1, -1, 1, 1))
        self.register_buffer("window_width", widths.view(1, 1, -1, 1, 1))
        self.register_buffer("offsets", torch.arange(-context, context + 1, dtype=torch.long))
        self.context = context
        in_channels = (2 * context + 1) * len(windows)
        self.encoder_channels = in_channels
        self.encoder = build_encoder(encoder, in_channels, norm=norm, pool=pool)
        feat = self.encoder.features
        self.gru = nn.GRU(feat, hidden, batch_first=True, bidirectional=True)
        self.image_head = nn.Linear(2 * hidden + feat, n_labels)
        self.exam_head = nn.Linear(4 * hidden, n_labels)
        nn.init.zeros_(self.exam_head.weight)
        nn.init.zeros_(self.exam_head.bias)
        self.channels_last = False
        #: Test-time views as (left-right, front-back) mirror flags; used in
        #: eval mode only (:data:`ichkit.model.config.TTA_VIEWS`).
        self.tta_views: tuple[tuple[bool, bool], ...] = ((False, False),)

    def slice_inputs(self, hu: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Windowed, context-stacked encoder input: (B, S, H, W) → (B, S, C, H, W)."""
        b, s = hu.shape[0], hu.shape[1]
        x = self.neighbour_inputs(self._neighbours(hu, lengths).flatten(0, 1))
        return x.view(b, s, *x.shape[1:])

    def _neighbours(self, hu: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Each slice's HU with its ``context`` neighbours: (B, S, H, W) → (B, S, K, H, W).

        Edge slices repeat (within each series' ``lengths`` when given).
        """
        b, s = hu.shape[0], hu.shape[1]
        if self.context == 0:
            return hu.unsqueeze(2)
        pos = torch.arange(s, device=hu.device).unsqueeze(1) + self.offsets.unsqueeze(0)  # (S, K)
        k = self.offsets.shape[0]
        if lengths is None:
            idx = pos.clamp(min=0, max=s - 1).reshape(-1)
            stacked = hu.index_select(1, idx)  # (B, S*K, H, W): a Gather in ONNX
            return stacked.reshape(b, s, k, hu.shape[2], hu.shape[3])
        upper = (lengths.to(hu.device) - 1).view(b, 1, 1)
        per_series = torch.minimum(pos.clamp(min=0).unsqueeze(0), upper)  # (B, S, K)
        batch = torch.arange(b, device=hu.device).view(b, 1, 1)
        return hu[batch, per_series]

    def neighbour_inputs(self, hu: torch.Tensor) -> torch.Tensor:
        """Encoder input of slices given with their neighbours, as :meth:`slice_inputs` stacks them.

        ``hu`` is (N, 2 * context + 1, H, W): each slice's neighbours from
        ``-context`` to ``+context`` (edges repeated by the caller); returns
        (N, C, H, W), channel ``k * len(windows) + w`` being neighbour ``k``
        through window ``w``, clamped to [0, 1]. Stage 1 uses it to window
        only the slices it trains on.

        The windows are one grouped 1×1 convolution (weight 1 / width, bias
        -low / width), computed in float32 even under autocast (and without
        TF32 on CUDA). With ``channels_last`` it writes the encoder's memory
        layout directly instead of windowing elementwise and then copying to
        that layout (0.97-1.43x the time of the copy path on 2 CPU cores:
        benchmarks/RESULTS.md).
        """
        k = 2 * self.context + 1  # a Python int: the ONNX export needs the weight's shape
        scale = 1.0 / self.window_width.flatten().float()
        weight = scale.repeat(k).view(-1, 1, 1, 1)
        bias = (-self.window_low.flatten().float() * scale).repeat(k)
        x = hu.float()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with (
            torch.autocast(x.device.type, enabled=False),
            torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False),
        ):
            out = nn.functional.conv2d(x, weight, bias, groups=k)
        if self.channels_last:  # one input channel (context 0) leaves the layout ambiguous
            out = out.contiguous(memory_format=torch.channels_last)
        return out.clamp_(0.0, 1.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder embeddings of (N, C, H, W) slices → (N, D)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out: torch.Tensor = self.encoder(x)
        return out

    def forward(
        self, hu: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image and exam logits of a batch of series.

        Parameters
        ----------
        hu
            float32 HU, shape (B, S, H, W); series shorter than S are padded at
            the end (any value) and their ``lengths`` given.
        lengths
            int64 (B,) number of real slices of each series; None = all S.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            Image logits (B, S, 6) (padding rows are meaningless) and exam
            logits (B, 6). In eval mode with test-time views
            (``tta_views``), the logits averaged over the mirrored copies.
        """
        views = self.tta_views
        if self.training or len(views) == 1:
            return self.forward_view(hu, lengths)
        b = hu.shape[0]
        copies = [_mirror(hu, lr, fb) for lr, fb in views]
        many = lengths.repeat(len(views)) if lengths is not None else None
        image, exam = self.forward_view(torch.cat(copies, dim=0), many)
        n = float(len(views))
        return (
            image.view(len(views), b, *image.shape[1:]).sum(dim=0) / n,
            exam.view(len(views), b, exam.shape[1]).sum(dim=0) / n,
        )

    def forward_view(
        self, hu: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image and exam logits of the series as given: :meth:`forward` without test-time views."""
        b, s = hu.shape[0], hu.shape[1]
        stacked = self._neighbours(hu, lengths)
        if lengths is None:
            feats = self._embed_stacks(stacked.flatten(0, 1)).view(b, s, -1)
        else:
            lengths = lengths.to(hu.device)
            mask = torch.arange(s, device=hu.device).unsqueeze(0) < lengths.unsqueeze(1)
            flat = self._embed_stacks(stacked[mask])
            feats = flat.new_zeros((b, s, flat.shape[1]))
            feats[mask] = flat
        return self.heads(feats, lengths)

    def _embed_stacks(self, stacks: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, D) of slices given with their neighbours (N, K, H, W).

        Without gradients on the CPU (inference) the slices go through in
        chunks of at most :data:`CPU_CHUNK_BYTES` of encoder input: glibc
        serves larger blocks with fresh pages from the kernel on every call,
        and a 4-view series of 33 slices at 128 px ran 1.40-1.49x faster in chunks
        (benchmarks/RESULTS.md). Each slice is embedded on its own (eval-mode
        norms), so the result is the same; training, gradients (Grad-CAM),
        other devices and ONNX export take one batch.
        """
        n = stacks.shape[0]
        per_slice = 4 * self.encoder_channels * stacks.shape[-2] * stacks.shape[-1]
        chunk = max(1, CPU_CHUNK_BYTES // per_slice)
        if (
            n <= chunk
            or self.training
            or torch.is_grad_enabled()
            or stacks.device.type != "cpu"
            or torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]
            or torch.onnx.is_in_onnx_export()
        ):
            return self.encode(self.neighbour_inputs(stacks))
        parts = [
            self.encode(self.neighbour_inputs(stacks[i : i + chunk])) for i in range(0, n, chunk)
        ]
        return torch.cat(parts)

    def heads(
        self, feats: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image and exam logits from slice embeddings (B, S, D) (the part after the encoder)."""
        with torch.autocast(feats.device.type, enabled=False):
            return self._heads_fp32(feats.float(), lengths)

    def _heads_fp32(
        self, feats: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # outside autocast: CUDA autocast runs cuDNN RNNs in fp16 whatever its
        # dtype (and without a loss scaler under bf16); the heads are tiny
        s = feats.shape[1]
        if lengths is None:
            seq, _ = self.gru(feats)
            pooled = torch.cat([seq.amax(dim=1), seq.mean(dim=1)], dim=1)
        else:
            lengths = lengths.to(feats.device)
            mask = torch.arange(s, device=feats.device).unsqueeze(0) < lengths.unsqueeze(1)
            packed = nn.utils.rnn.pack_padded_sequence(
                feats, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            out, _ = self.gru(packed)
            seq, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=s)
            m = mask.unsqueeze(2).to(seq.dtype)
            neg = torch.finfo(seq.dtype).min
            seq_max = seq.masked_fill(~mask.unsqueeze(2), neg).amax(dim=1)
            seq_mean = (seq * m).sum(dim=1) / lengths.to(seq.dtype).unsqueeze(1)
            pooled = torch.cat([seq_max, seq_mean], dim=1)
        image_logits = self.image_head(torch.cat([seq, feats], dim=2))
        # An exam is positive when any image is (RSNA exam labels are the image
        # maximum): start from the highest image logit and learn a correction.
        if lengths is None:
            top = image_logits.amax(dim=1)
        else:
            neg = torch.finfo(image_logits.dtype).min
            top = image_logits.masked_fill(~mask.unsqueeze(2), neg).amax(dim=1)
        exam_logits = top + self.exam_head(pooled)
        return image_logits, exam_logits


def _mirror(hu: torch.Tensor, lr: bool, fb: bool) -> torch.Tensor:
    """(B, S, H, W) mirrored left-right (W) and/or front-back (H)."""
    dims = [d for d, on in ((-1, lr), (-2, fb)) if on]
    return hu.flip(dims) if dims else hu


def build_model(cfg: TrainConfig) -> SeriesModel:
    """Build the (randomly initialised) series model a configuration describes."""
    from ichkit.model.config import TTA_VIEWS, resolve_windows

    windows = tuple((c, w) for _, c, w in resolve_windows(cfg.windows))
    model = SeriesModel(
        encoder=cfg.encoder,
        windows=windows,
        context=cfg.context,
        hidden=cfg.hidden,
        norm=cfg.norm,
        pool=cfg.pool,
    )
    model.tta_views = TTA_VIEWS[cfg.tta]
    if cfg.channels_last:
        model.channels_last = True
        model.encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model
