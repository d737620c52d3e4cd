"""HU conversion on arrays, and display windows."""

from __future__ import annotations

import numpy as np
import pytest

from ichkit.dicom import (
    AIR_HU,
    WINDOWS,
    Window,
    WindowPreset,
    apply_window,
    fix_rsna_12bit_quirk,
    has_rsna_12bit_quirk,
    stack_windows,
    to_hu,
)
from ichkit.errors import ConfigError


def test_quirk_rule_fires_only_on_its_exact_condition() -> None:
    assert has_rsna_12bit_quirk(bits_stored=12, pixel_representation=0, rescale_intercept=0)
    assert has_rsna_12bit_quirk(bits_stored=12, pixel_representation=0, rescale_intercept=-99)
    assert not has_rsna_12bit_quirk(bits_stored=12, pixel_representation=0, rescale_intercept=-1024)
    assert not has_rsna_12bit_quirk(bits_stored=12, pixel_representation=1, rescale_intercept=0)
    assert not has_rsna_12bit_quirk(bits_stored=16, pixel_representation=0, rescale_intercept=0)


def test_quirk_fix_is_the_published_correction() -> None:
    # px + 1000; px[px >= 4096] -= 4096; intercept -1000 (public RSNA 2019 kernels).
    stored = np.array([0, 40, 3095, 3096, 4056, 4095], dtype=np.uint16)
    values, intercept = fix_rsna_12bit_quirk(stored)
    assert intercept == -1000
    np.testing.assert_array_equal(values + intercept, [0, 40, 3095, -1000, -40, -1])
    hu, fired = to_hu(stored, rescale_intercept=0, bits_stored=12, pixel_representation=0)
    assert fired
    np.testing.assert_array_equal(hu, [0, 40, 3095, -1000, -40, -1])


def test_to_hu_clips_to_int16_and_air() -> None:
    stored = np.array([-32768, 0, 32767], dtype=np.int16)
    hu, fired = to_hu(stored, rescale_slope=2.0, rescale_intercept=0.0)
    assert not fired
    np.testing.assert_array_equal(hu, [AIR_HU, 0, 32767])
    assert hu.dtype == np.int16


def test_padding_range_limit() -> None:
    stored = np.array([0, 1, 2, 3, 100], dtype=np.uint16)
    hu, _ = to_hu(
        stored,
        rescale_intercept=0,
        pixel_representation=0,
        pixel_padding_value=3,
        pixel_padding_range_limit=1,
    )
    np.testing.assert_array_equal(hu, [0, AIR_HU, AIR_HU, AIR_HU, 100])


def test_presets_are_the_usual_head_ct_windows() -> None:
    assert WINDOWS[WindowPreset.BRAIN] == Window(40, 80)
    assert WINDOWS[WindowPreset.SUBDURAL] == Window(80, 200)
    assert WINDOWS[WindowPreset.SOFT_TISSUE] == Window(40, 380)
    assert WINDOWS[WindowPreset.BONE] == Window(600, 2800)


def test_apply_window_is_linear_and_clipped() -> None:
    hu = np.array([-1024, 0, 20, 40, 60, 80, 2000], dtype=np.int16)
    out = apply_window(hu, center=40, width=80)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, 0.25, 0.5, 0.75, 1, 1])


def test_apply_window_rejects_bad_width() -> None:
    with pytest.raises(ConfigError, match=r"width: window width is 0; expected > 0"):
        apply_window(np.zeros(3), center=40, width=0)


def test_stack_windows_shapes_and_values() -> None:
    rng = np.random.default_rng(0)
    series = rng.integers(-1024, 3000, size=(3, 5, 7)).astype(np.int16)
    stacked = stack_windows(series, ["brain", WindowPreset.BONE, Window(0, 10)])
    assert stacked.shape == (3, 3, 5, 7) and stacked.dtype == np.float32
    np.testing.assert_allclose(stacked[:, 0], apply_window(series, center=40, width=80))
    np.testing.assert_allclose(stacked[:, 1], apply_window(series, center=600, width=2800))
    np.testing.assert_allclose(stacked[:, 2], apply_window(series, center=0, width=10))
    one = stack_windows(series[1])
    assert one.shape == (3, 5, 7)
    np.testing.assert_allclose(one[0], stacked[1, 0])


def test_stack_windows_errors() -> None:
    with pytest.raises(ConfigError, match=r"window: unknown window 'lung'; expected one of brain"):
        stack_windows(np.zeros((2, 2)), ["lung"])
    with pytest.raises(ConfigError, match=r"hu: HU array has shape \(2,\)"):
        stack_windows(np.zeros(2))
