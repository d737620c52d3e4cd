"""Display windows (VOI LUT) over Hounsfield units, as model input channels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from ichkit.errors import ConfigError

__all__ = ["WINDOWS", "Window", "WindowPreset", "apply_window", "stack_windows"]


@dataclass(frozen=True, slots=True)
class Window:
    """A linear display window (PS3.3 C.11.2.1.2: Window Center and Width), in HU.

    Parameters
    ----------
    center
        (0028,1050) Window Center.
    width
        (0028,1051) Window Width; must be positive.
    """

    center: float
    width: float

    @property
    def low(self) -> float:
        """The HU mapped to 0."""
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        """The HU mapped to 1."""
        return self.center + self.width / 2


class WindowPreset(StrEnum):
    """Named head CT windows used for ICH reading (RSNA 2019 kernels, radiology practice)."""

    BRAIN = "brain"
    SUBDURAL = "subdural"
    SOFT_TISSUE = "soft_tissue"
    BONE = "bone"


#: Center/width of each preset, HU.
WINDOWS: Mapping[WindowPreset, Window] = MappingProxyType(
    {
        WindowPreset.BRAIN: Window(40, 80),
        WindowPreset.SUBDURAL: Window(80, 200),
        WindowPreset.SOFT_TISSUE: Window(40, 380),
        WindowPreset.BONE: Window(600, 2800),
    }
)

WindowLike = Window | WindowPreset | str


def _resolve(window: WindowLike) -> Window:
    if isinstance(window, Window):
        if not window.width > 0:
            raise ConfigError(
                f"window width is {window.width}; expected > 0", field="width", value=window.width
            )
        return window
    try:
        return WINDOWS[WindowPreset(window)]
    except ValueError as err:
        names = ", ".join(p.value for p in WindowPreset)
        raise ConfigError(
            f"unknown window {window!r}; expected one of {names} or a Window(center, width)",
            field="window",
            value=window,
        ) from err


def _window_into(hu: npt.NDArray[np.generic], window: Window, out: npt.NDArray[np.float32]) -> None:
    # (hu - low) / width computed in float32 straight into `out`: no float64 temporaries.
    np.subtract(hu, np.float32(window.low), out=out, dtype=np.float32, casting="unsafe")
    np.multiply(out, np.float32(1.0 / window.width), out=out)
    np.clip(out, 0.0, 1.0, out=out)


def apply_window(hu: npt.ArrayLike, *, center: float, width: float) -> npt.NDArray[np.float32]:
    """Map HU linearly to [0, 1] through a window, clipping outside it.

    ``0`` at ``center - width/2`` and below, ``1`` at ``center + width/2`` and
    above (the linear VOI LUT of PS3.3 C.11.2.1.2, without its half-unit offsets).

    Parameters
    ----------
    hu
        Hounsfield units, any shape, any real dtype.
    center, width
        Window Center and Width in HU; width must be positive.

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``hu``, values in [0, 1].

    Raises
    ------
    ConfigError
        ``width`` is not positive.
    """
    window = _resolve(Window(center, width))
    arr = np.asarray(hu)
    out = np.empty(arr.shape, dtype=np.float32)
    _window_into(arr, window, out)
    return out


def stack_windows(
    hu: npt.ArrayLike,
    windows: Sequence[WindowLike] = (
        WindowPreset.BRAIN,
        WindowPreset.SUBDURAL,
        WindowPreset.SOFT_TISSUE,
    ),
) -> npt.NDArray[np.float32]:
    """Window HU through several windows and stack them as channels.

    A slice (H, W) becomes (C, H, W); a series (S, H, W) becomes (S, C, H, W).
    The default brain / subdural / soft-tissue triple is the usual RSNA 2019
    3-channel input.

    Parameters
    ----------
    hu
        Hounsfield units, shape (H, W) or (S, H, W).
    windows
        Presets (``WindowPreset`` or their names) or :class:`Window` objects.

    Returns
    -------
    numpy.ndarray
        float32 in [0, 1], one channel per window, written in place into one
        preallocated array.

    Raises
    ------
    ConfigError
        An unknown preset name, a non-positive width, no windows, or an array
        that is not 2-D or 3-D.
    """
    arr = np.asarray(hu)
    resolved = [_resolve(w) for w in windows]
    if not resolved:
        raise ConfigError("no windows given; expected at least one", field="windows", value=[])
    if arr.ndim not in (2, 3):
        raise ConfigError(
            f"HU array has shape {arr.shape}; expected (H, W) or (S, H, W)",
            field="hu",
            value=arr.shape,
        )
    channel_axis = arr.ndim - 2
    shape = (*arr.shape[:channel_axis], len(resolved), *arr.shape[channel_axis:])
    out = np.empty(shape, dtype=np.float32)
    for c, window in enumerate(resolved):
        _window_into(arr, window, out[..., c, :, :])
    return out
