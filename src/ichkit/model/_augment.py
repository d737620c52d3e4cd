"""Training augmentation with MONAI transforms, seeded per exam and epoch.

The whole series gets one draw (a series is a channel-first 2D stack, so every
slice moves together): a left-right and a front-back flip, an affine (±15°,
±12 % scale, ±5 % shift), an HU shift and scale, and Gaussian noise. Each exam's
draw depends only on (seed, epoch, exam index), never on the process or the
batch, so DDP training sees exactly what one process sees.

The Gaussian noise is MONAI's ``RandGaussianNoise`` draw (probability, then a
standard deviation uniform in [0, std]) with the noise field itself drawn by
torch from a seed of the transform's random state: MONAI draws it with numpy's
legacy generator in float64, 38 % of the augmentation's time in a profile of
stage 1 (benchmarks/RESULTS.md, stage 1's input pipeline).

The front-back flip and the wider affine are there for generalisation: the
demo-size model fitted its training exams' subarachnoid bleeds (exam AUC 0.995)
far better than unseen ones (0.93) with ±8° and a left-right flip only; convexity
bleeds lie anywhere around the head, so flipped and turned copies are new
examples of them (benchmarks/RESULTS.md, E4).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import numpy.typing as npt
import torch

from ichkit.model._preprocess import AIR_HU

__all__ = ["SeriesAugment", "sample_seed"]


def sample_seed(seed: int, epoch: int, index: int, salt: str = "") -> int:
    """A 32-bit seed for one exam in one epoch."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}:{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class SeriesAugment:
    """Random flips, affine, intensity and noise jitter of a (slices, H, W) HU stack.

    Parameters
    ----------
    size
        Input side (pixels), for the translation range.
    """

    def __init__(self, size: int) -> None:
        from monai.transforms import (  # type: ignore[attr-defined]
            Compose,
            RandAffine,
            RandFlip,
            RandScaleIntensity,
            RandShiftIntensity,
        )

        from ichkit.model._noise import RandTorchGaussianNoise

        shift = 0.05 * size
        self._transform = Compose(
            [
                RandFlip(prob=0.5, spatial_axis=1),
                RandFlip(prob=0.5, spatial_axis=0),
                RandAffine(
                    prob=0.8,
                    rotate_range=(math.radians(15),),
                    scale_range=(0.12, 0.12),
                    translate_range=(shift, shift),
                    mode="bilinear",
                    padding_mode="zeros",
                ),
                RandScaleIntensity(factors=0.01, prob=0.5),
                RandShiftIntensity(offsets=6.0, prob=0.5),
                RandTorchGaussianNoise(prob=0.5, std=5.0),
            ]
        )

    def __call__(self, hu: npt.NDArray[np.generic], *, seed: int) -> torch.Tensor:
        """Augment one series; returns float32 HU, same shape."""
        from monai.data import get_track_meta, set_track_meta  # type: ignore[attr-defined]

        # Work on HU + 1024 so that the zero padding of the affine is air.
        x = torch.as_tensor(np.asarray(hu, dtype=np.float32) - AIR_HU)
        self._transform.set_random_state(seed=seed)
        # Plain tensors, not MONAI MetaTensors: no metadata is needed, and a
        # MetaTensor would route every later op (windowing, the encoder's
        # forward and backward) through its Python __torch_function__.
        tracking = get_track_meta()
        set_track_meta(False)
        try:
            out = self._transform(x)
        finally:
            set_track_meta(tracking)
        plain = torch.as_tensor(out, dtype=torch.float32).as_subclass(torch.Tensor)
        return plain.add_(AIR_HU)
