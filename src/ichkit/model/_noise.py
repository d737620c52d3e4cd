"""A MONAI random transform that adds Gaussian noise drawn by torch.

Kept apart from :mod:`ichkit.model._augment` so that importing that module does
not import MONAI's transforms (slow) until an augmentation is built.
"""

from __future__ import annotations

import torch
from monai.transforms import RandomizableTransform  # type: ignore[attr-defined]

__all__ = ["RandTorchGaussianNoise"]


class RandTorchGaussianNoise(RandomizableTransform):
    """Add zero-mean Gaussian noise with probability ``prob`` (a MONAI random transform).

    As MONAI's ``RandGaussianNoise(prob, mean=0, std)`` with ``sample_std``:
    the standard deviation is drawn uniformly in [0, ``std``] from the
    transform's random state ``R``, which also gives the seed of the torch
    generator that draws the float32 noise field.

    Parameters
    ----------
    prob
        Probability of adding noise.
    std
        Upper bound of the drawn standard deviation (HU).
    """

    def __init__(self, prob: float, std: float) -> None:
        RandomizableTransform.__init__(self, prob)
        self.std = std
        self._sigma = 0.0
        self._seed = 0

    def randomize(self, data: object = None) -> None:
        """Draw whether to add noise, its standard deviation and the field's seed."""
        super().randomize(None)
        if self._do_transform:
            self._sigma = float(self.R.uniform(0.0, self.std))
            self._seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, img: torch.Tensor, randomize: bool = True) -> torch.Tensor:
        """``img`` plus noise (``img`` itself when no noise is drawn)."""
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        generator = torch.Generator(device=img.device).manual_seed(self._seed)
        noise = torch.randn(img.shape, generator=generator, dtype=img.dtype, device=img.device)
        return img + noise.mul_(self._sigma)
