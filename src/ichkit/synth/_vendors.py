"""Scanner vendor profiles: how each site stores and names its images.

The profiles differ the way real exports do: pixel storage (16-bit signed;
12-bit unsigned with intercept -1024; the RSNA 12-bit quirk), transfer syntax
(uncompressed explicit / implicit little endian, RLE Lossless, JPEG-LS
Lossless, JPEG 2000 Lossless), instance numbering direction, file naming,
window presets, gantry tilt, noise level and texture, UID root and private
block. JPEG Lossless Process 14 (what CQ500 uses) cannot be *written* with
pydicom, so the compressed profiles use RLE, JPEG-LS and JPEG 2000 lossless.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

__all__ = ["PROFILES", "PixelEncoding", "VendorProfile", "profile_for_site", "site_name"]


class PixelEncoding(enum.StrEnum):
    """How HU become stored pixel values."""

    SIGNED16 = "signed16"  # BitsStored 16, PixelRepresentation 1: raw = HU - intercept
    UNSIGNED12 = "unsigned12"  # BitsStored 12, PixelRepresentation 0, intercept -1024
    RSNA_QUIRK12 = "rsna_quirk12"  # BitsStored 12, PR 0, intercept > -100: raw = HU mod 4096


@dataclass(frozen=True)
class VendorProfile:
    """How one vendor's scanner at a site writes its images."""

    key: str
    manufacturer: str
    model: str
    software: str
    encoding: PixelEncoding
    intercept: int
    transfer_syntax: str
    encoding_plugin: str
    superior_first: bool  # InstanceNumber 1 at the vertex
    naming: str  # file naming scheme
    window_center: tuple[int, ...]
    window_width: tuple[int, ...]
    padding: int | None  # raw PixelPaddingValue outside the reconstruction circle
    tilt_probability: float
    tilt_range: tuple[float, float]  # degrees
    noise_sigma: tuple[float, float]  # HU, at 0.47 mm pixels and 5 mm slices
    noise_corr_mm: tuple[float, float]
    kernel: str
    uid_root: str
    private_creator: str
    private_group: int
    kvp: int


PROFILES: tuple[VendorProfile, ...] = (
    VendorProfile(
        key="ge-lightspeed",
        manufacturer="GE MEDICAL SYSTEMS",
        model="LightSpeed VCT",
        software="LightSpeedverrel",
        encoding=PixelEncoding.SIGNED16,
        intercept=-1024,
        transfer_syntax=ExplicitVRLittleEndian,
        encoding_plugin="",
        superior_first=False,
        naming="im",
        window_center=(40, 40),
        window_width=(80, 80),
        padding=-2000,
        tilt_probability=0.6,
        tilt_range=(8.0, 20.0),
        noise_sigma=(3.0, 5.0),
        noise_corr_mm=(0.5, 0.8),
        kernel="STANDARD",
        uid_root="1.2.840.113619.2.55.3",
        private_creator="GEMS_IDEN_01",
        private_group=0x0009,
        kvp=120,
    ),
    VendorProfile(
        key="siemens-definition",
        manufacturer="SIEMENS",
        model="SOMATOM Definition AS+",
        software="syngo CT VA48A",
        encoding=PixelEncoding.UNSIGNED12,
        intercept=-1024,
        transfer_syntax=RLELossless,
        encoding_plugin="pylibjpeg",
        superior_first=True,
        naming="sop",
        window_center=(40, 700),
        window_width=(80, 3200),
        padding=None,
        tilt_probability=0.0,
        tilt_range=(0.0, 0.0),
        noise_sigma=(2.5, 4.0),
        noise_corr_mm=(0.4, 0.6),
        kernel="H30s",
        uid_root="1.3.12.2.1107.5.1.4.73",
        private_creator="SIEMENS CT VA0  COAD",
        private_group=0x0019,
        kvp=120,
    ),
    VendorProfile(
        key="toshiba-aquilion",
        manufacturer="TOSHIBA",
        model="Aquilion",
        software="V4.86ER009",
        encoding=PixelEncoding.RSNA_QUIRK12,
        intercept=0,
        transfer_syntax=ImplicitVRLittleEndian,
        encoding_plugin="",
        superior_first=False,
        naming="rsna",
        window_center=(40,),
        window_width=(80,),
        padding=None,
        tilt_probability=0.3,
        tilt_range=(5.0, 15.0),
        noise_sigma=(3.5, 5.5),
        noise_corr_mm=(0.5, 0.9),
        kernel="FC26",
        uid_root="1.2.392.200036.9116.2.6.1.48",
        private_creator="TOSHIBA_MEC_CT3",
        private_group=0x7005,
        kvp=120,
    ),
    VendorProfile(
        key="philips-ict",
        manufacturer="Philips",
        model="iCT 256",
        software="4.1.6",
        encoding=PixelEncoding.UNSIGNED12,
        intercept=-1024,
        transfer_syntax=JPEGLSLossless,
        encoding_plugin="pyjpegls",
        superior_first=True,
        naming="im_shuffled",
        window_center=(35, 40),
        window_width=(75, 120),
        padding=None,
        tilt_probability=0.0,
        tilt_range=(0.0, 0.0),
        noise_sigma=(2.5, 4.5),
        noise_corr_mm=(0.4, 0.7),
        kernel="UB",
        uid_root="1.3.46.670589.33.1.63",
        private_creator="ELSCINT1",
        private_group=0x01F1,
        kvp=120,
    ),
    VendorProfile(
        key="ge-revolution",
        manufacturer="GE MEDICAL SYSTEMS",
        model="Revolution CT",
        software="revo_ct_21a.24",
        encoding=PixelEncoding.SIGNED16,
        intercept=0,
        transfer_syntax=JPEG2000Lossless,
        encoding_plugin="pylibjpeg",
        superior_first=False,
        naming="sop",
        window_center=(40,),
        window_width=(80,),
        padding=-3024,
        tilt_probability=0.0,
        tilt_range=(0.0, 0.0),
        noise_sigma=(2.0, 3.5),
        noise_corr_mm=(0.5, 0.7),
        kernel="STANDARD",
        uid_root="1.2.840.113619.2.415.3",
        private_creator="GEMS_IDEN_01",
        private_group=0x0009,
        kvp=120,
    ),
)


def profile_for_site(site: int) -> VendorProfile:
    """The vendor profile of site number ``site`` (0-based; cycles through PROFILES)."""
    return PROFILES[site % len(PROFILES)]


def site_name(site: int) -> str:
    """Folder / CSV name of site number ``site``: site-a, site-b, …"""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return f"site-{letters[site]}" if site < 26 else f"site-{site + 1:02d}"
