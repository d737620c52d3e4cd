"""Encoder registry, the series model's shapes, padding and preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ichkit.errors import ConfigError
from ichkit.model import ENCODERS, build_model, head_box, load_config, preprocess_volume
from ichkit.model.networks import build_encoder


def test_registry_lists_choices_in_error() -> None:
    assert {"tiny", "small", "medium", "seresnext101"} <= set(ENCODERS)
    with pytest.raises(ConfigError, match="unknown encoder 'resnet999'; expected one of tiny"):
        build_encoder("resnet999", 3)


@pytest.mark.parametrize("name", ["small-fine", "small-dilated"])
def test_finer_variants_keep_twice_the_map_side_with_the_same_weights(name: str) -> None:
    # small-fine is small without the stem's max-pool, small-dilated with a
    # dilated last stage: the same weights, a final map of twice the side.
    small, fine = build_encoder("small", 9), build_encoder(name, 9)
    x = torch.zeros(2, 9, 64, 64)
    assert small.body(x).shape == (2, 128, 2, 2)
    assert fine.body(x).shape == (2, 128, 4, 4)
    assert fine(x).shape == small(x).shape == (2, 128)
    assert [p.shape for p in fine.parameters()] == [p.shape for p in small.parameters()]


def test_patch_stem_variant_has_the_dilated_map_without_a_full_resolution_stem() -> None:
    # small-dilated-patch: a 4x4 stride-4 stem instead of the strided 3x3 + max-pool
    dilated, patch = build_encoder("small-dilated", 9), build_encoder("small-dilated-patch", 9)
    x = torch.zeros(2, 9, 64, 64)
    assert patch.body(x).shape == dilated.body(x).shape == (2, 128, 4, 4)
    stem = patch.body[0]
    assert isinstance(stem, torch.nn.Conv2d) and stem.kernel_size == stem.stride == (4, 4)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in patch.body.modules())


def _field_of_view(encoder: torch.nn.Module, side: int) -> int:
    """Side (pixels) of the input region that the centre cell of the final map sees."""
    x = torch.rand(1, 9, side, side, requires_grad=True)
    maps = encoder.body(x)
    h, w = maps.shape[2:]
    maps[0, :, h // 2, w // 2].sum().backward()
    assert x.grad is not None
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)) > 0)
    return int(rows.max() - rows.min() + 1)


def test_small_dilated_refines_only_the_last_stage_and_keeps_its_field_of_view() -> None:
    torch.manual_seed(0)
    small, dilated = build_encoder("small", 9).eval(), build_encoder("small-dilated", 9).eval()
    # the stages before the last are untouched
    assert [m.stride for m in dilated.body[:-1].modules() if isinstance(m, torch.nn.Conv2d)] == [
        m.stride for m in small.body[:-1].modules() if isinstance(m, torch.nn.Conv2d)
    ]
    # dilation keeps the last stage's field of view: without it, a stride-1
    # stage would see less of the slice than small's does
    assert _field_of_view(dilated, 256) == _field_of_view(small, 256) == 191


def test_dilated_stage_of_two_blocks_keeps_the_field_of_view() -> None:
    # later blocks of a dilated stage are dilated in both convolutions
    from ichkit.model.networks import _monai_resnet

    torch.manual_seed(0)
    layout = {"layers": [1, 1, 1, 2], "widths": [8, 8, 8, 8], "groups": 4, "norm": "batch"}
    plain = _monai_resnet(9, **layout).eval()  # type: ignore[arg-type]
    dilated = _monai_resnet(9, **layout, dilate_last=True).eval()  # type: ignore[arg-type]
    assert dilated.body(torch.zeros(1, 9, 64, 64)).shape == (1, 8, 4, 4)
    assert _field_of_view(dilated, 512) == _field_of_view(plain, 512) == 319


def test_shapes_and_padding_invariance() -> None:
    torch.manual_seed(0)
    cfg = load_config(preset="tiny", overrides=["context=2"])
    model = build_model(cfg).eval()
    a = torch.randn(1, 7, 32, 32) * 100
    b = torch.randn(1, 4, 32, 32) * 100
    with torch.no_grad():
        ia, ea = model(a)
        ib, eb = model(b)
        padded = torch.cat([a, torch.cat([b, torch.full((1, 3, 32, 32), -1024.0)], 1)])
        ip, ep = model(padded, torch.tensor([7, 4]))
    assert ia.shape == (1, 7, 6) and ea.shape == (1, 6)
    assert torch.allclose(ip[0], ia[0], atol=1e-5)
    assert torch.allclose(ip[1, :4], ib[0], atol=1e-5)
    assert torch.allclose(ep, torch.cat([ea, eb]), atol=1e-5)


def test_heads_on_embeddings_equal_forward() -> None:
    # Two-stage training trains model.heads on frozen encoder embeddings; the
    # exported model must compute the same function from HU.
    torch.manual_seed(1)
    model = build_model(load_config(preset="tiny")).eval()
    hu = torch.randn(2, 5, 32, 32) * 100
    lengths = torch.tensor([5, 3])
    with torch.no_grad():
        image, exam = model(hu, lengths)
        feats = torch.zeros(2, 5, model.encoder.features)
        for i, n in enumerate(lengths.tolist()):
            feats[i, :n] = model.encode(model.slice_inputs(hu[i : i + 1, :n])[0])
        image2, exam2 = model.heads(feats, lengths)
        single = model.heads(feats[1:2, :3])
    assert torch.allclose(image[0], image2[0], atol=1e-5)
    assert torch.allclose(image[1, :3], image2[1, :3], atol=1e-5)
    assert torch.allclose(exam, exam2, atol=1e-5)
    assert torch.allclose(single[1][0], exam[1], atol=1e-5)


def test_avgmax_pool_concatenates_average_and_maximum() -> None:
    torch.manual_seed(3)
    model = build_model(load_config(preset="tiny", overrides=["pool=avgmax"])).eval()
    plain = build_encoder("tiny", 9)
    assert model.encoder.features == 2 * plain.features
    x = torch.rand(4, 9, 32, 32)
    with torch.no_grad():
        maps = model.encoder.body(x)
        emb = model.encode(x)
        _, exam = model(torch.randn(1, 5, 32, 32) * 100)
    assert emb.shape == (4, 2 * plain.features)
    assert torch.allclose(emb[:, : plain.features], maps.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(emb[:, plain.features :], maps.amax(dim=(2, 3)), atol=1e-6)
    assert exam.shape == (1, 6)
    with pytest.raises(ConfigError, match="unknown pool 'gem'"):
        build_encoder("tiny", 9, pool="gem")


def test_tta_averages_the_mirrored_views() -> None:
    torch.manual_seed(2)
    model = build_model(load_config(preset="tiny", overrides=["tta=flips"])).eval()
    assert len(model.tta_views) == 4
    hu = torch.randn(2, 5, 32, 32) * 100
    lengths = torch.tensor([5, 3])
    with torch.no_grad():
        image, exam = model(hu, lengths)
        views = [hu, hu.flip(-1), hu.flip(-2), hu.flip(-1).flip(-2)]
        plain = [model.forward_view(v, lengths) for v in views]
    assert torch.allclose(image, sum(p[0] for p in plain) / 4, atol=1e-5)
    assert torch.allclose(exam, sum(p[1] for p in plain) / 4, atol=1e-5)
    assert not torch.allclose(exam, plain[0][1], atol=1e-4)  # the views do differ
    model.tta_views = ((False, False),)
    with torch.no_grad():
        assert torch.allclose(model(hu, lengths)[1], plain[0][1], atol=1e-6)


def test_slice_inputs_window_and_context() -> None:
    cfg = load_config(preset="tiny", overrides=["windows=brain,bone", "context=1"])
    model = build_model(cfg)
    hu = torch.stack([torch.full((4, 4), v) for v in (0.0, 40.0, 80.0)]).unsqueeze(0)
    x = model.slice_inputs(hu)
    assert x.shape == (1, 3, 6, 4, 4)  # 3 neighbours x 2 windows
    # slice 0: neighbours (0, 0, 1) clamped at the edge; brain window 40/80 maps 0->0, 40->0.5
    brain = x[0, 0, 0::2, 0, 0].tolist()
    assert brain == pytest.approx([0.0, 0.0, 0.5])


def test_neighbour_inputs_equal_slice_inputs() -> None:
    # Stage 1 windows only the slices it trains on: each with its neighbours
    # (edges repeated) must give exactly the channels slice_inputs gives.
    cfg = load_config(preset="tiny", overrides=["windows=brain,subdural,bone", "context=1"])
    model = build_model(cfg)
    hu = torch.randn(1, 7, 16, 16) * 300.0
    full = model.slice_inputs(hu)[0]
    for k in range(7):
        idx = torch.clamp(torch.arange(k - 1, k + 2), 0, 6)
        got = model.neighbour_inputs(hu[0, idx].unsqueeze(0))[0]
        assert torch.equal(got, full[k]), k


def test_windows_as_one_convolution() -> None:
    # The grouped 1x1 convolution gives what clamp((hu - low) / width, 0, 1) gives per
    # neighbour and window, in the encoder's channels-last layout, and in float32
    # under bf16 autocast too.
    cfg = load_config(preset="tiny", overrides=["windows=brain,subdural,bone", "context=1"])
    model = build_model(cfg)
    assert model.channels_last
    hu = torch.randn(5, 3, 16, 16) * 400.0
    low = torch.tensor([0.0, -20.0, -800.0])
    width = torch.tensor([80.0, 200.0, 2800.0])
    want = ((hu.unsqueeze(2) - low.view(1, 1, 3, 1, 1)) / width.view(1, 1, 3, 1, 1)).clamp(0, 1)
    got = model.neighbour_inputs(hu)
    assert got.shape == (5, 9, 16, 16)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, want.flatten(1, 2), atol=1e-6)
    assert 0.0 < float(got.mean()) < 1.0 and float(got.min()) == 0.0 and float(got.max()) == 1.0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_autocast = model.neighbour_inputs(hu)
    assert in_autocast.dtype == torch.float32
    assert torch.equal(in_autocast, got)


def test_augment_returns_plain_tensors() -> None:
    # A MONAI MetaTensor would route every later op through Python (slow); the
    # draw depends only on the seed.
    from ichkit.model._augment import SeriesAugment

    augment = SeriesAugment(32)
    hu = np.random.default_rng(0).normal(30.0, 20.0, (5, 32, 32)).astype(np.int16)
    a, b = augment(hu, seed=7), augment(hu, seed=7)
    assert type(a) is torch.Tensor and a.dtype == torch.float32 and a.shape == (5, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(hu, seed=8))


def test_torch_noise_transform() -> None:
    # MONAI's draw (probability, sigma uniform in [0, std]) with a torch noise field.
    from ichkit.model._noise import RandTorchGaussianNoise

    img = torch.zeros(4, 64, 64)
    noise = RandTorchGaussianNoise(prob=1.0, std=5.0)
    noise.set_random_state(seed=3)
    a = noise(img)
    sigma = noise._sigma
    assert 0.0 < sigma <= 5.0
    assert a.dtype == torch.float32 and a.shape == img.shape
    assert abs(float(a.std()) - sigma) < 0.05 * sigma and abs(float(a.mean())) < 0.05 * sigma
    noise.set_random_state(seed=3)
    assert torch.equal(noise(img), a)
    assert not torch.equal(noise(img), a)  # the next draw differs
    never = RandTorchGaussianNoise(prob=0.0, std=5.0)
    assert never(img) is img


def test_head_box_and_preprocess() -> None:
    hu = np.full((3, 100, 120), -1000, dtype=np.int16)
    hu[:, 20:60, 30:90] = 40  # head: rows 20-59, cols 30-89
    hu[:, 95:97, 0:120] = 200  # a thin table line, not head
    box = head_box(hu)
    assert box.height == box.width >= 60 and box.row0 <= 20 and box.col0 <= 30
    assert box.row0 + box.height >= 60 and box.col0 + box.width >= 90
    assert box.row0 + box.height < 95  # the table is left out
    out, box2 = preprocess_volume(hu, size=32)
    assert out.shape == (3, 32, 32) and out.dtype == np.int16 and box2 == box
    assert out[:, 16, 16].tolist() == [40, 40, 40]
    assert out.min() == -1000


@pytest.mark.parametrize(
    ("n_in", "n_out"), [(480, 128), (130, 128), (100, 128), (64, 32), (96, 96)]
)
def test_numpy_resize_equals_torch_antialiased_bilinear(n_in: int, n_out: int) -> None:
    """The torch-free resize used by preprocessing matches torch's antialiased bilinear."""
    import torch.nn.functional as F  # noqa: N812

    from ichkit.model._preprocess import resize_weights

    x = np.random.default_rng(n_in).normal(0.0, 300.0, (2, n_in, n_in)).astype(np.float32)
    expect = F.interpolate(
        torch.from_numpy(x).unsqueeze(1),
        size=(n_out, n_out),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    ).squeeze(1)
    w = resize_weights(n_in, n_out)
    got = w @ x @ w.T
    assert np.abs(got - expect.numpy()).max() < 2e-3  # float32 rounding, HU scale 300
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-5)


def test_intracranial_mask() -> None:
    from ichkit.model._gradcam import intracranial_mask

    yy, xx = np.mgrid[0:64, 0:64]
    r = np.hypot(yy - 32, xx - 32)
    hu = np.full((64, 64), -1000.0)
    hu[r < 28] = 1000.0  # skull
    hu[r < 24] = 35.0  # brain
    cavity = intracranial_mask(hu)
    assert cavity[32, 32] and cavity[32, 32 + 22]  # brain, up to the inner table
    assert not cavity[32, 32 + 25] and not cavity[0, 0]  # bone, air
    assert cavity.sum() < (r < 24).sum()  # the bone margin is excluded
    open_ring = hu.copy()
    open_ring[30:35, 50:64] = 35.0  # a gap in the skull: no closed cavity
    assert np.array_equal(intracranial_mask(open_ring), open_ring > -300)


def test_cpu_inference_in_chunks_equals_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inference without gradients embeds the slices in chunks (small blocks
    # for malloc); the logits are those of one batch, padded series included.
    import ichkit.model.networks as networks

    cfg = load_config(preset="tiny", overrides=["context=1", "tta=lr"])
    model = build_model(cfg).eval()
    hu = torch.randn(2, 7, 32, 32) * 300.0
    lengths = torch.tensor([7, 5])
    with torch.enable_grad():  # gradients on: one batch
        whole = [model(hu), model(hu, lengths)]
    calls: list[int] = []
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda x: calls.append(x.shape[0]) or encode(x))
    per_slice = 4 * model.encoder_channels * 32 * 32
    monkeypatch.setattr(networks, "CPU_CHUNK_BYTES", 3 * per_slice)
    with torch.no_grad():
        chunked = [model(hu), model(hu, lengths)]
    assert calls[:10] == [3, 3, 3, 3, 3, 3, 3, 3, 3, 1]  # 2 views x 2 series x 7 slices = 28
    assert sum(calls) == 28 + 24  # then the 2 x (7 + 5) real slices of the padded batch
    for (image, exam), (image2, exam2) in zip(whole, chunked, strict=True):
        assert torch.allclose(image, image2, atol=1e-5)
        assert torch.allclose(exam, exam2, atol=1e-5)
