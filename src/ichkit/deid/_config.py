"""Settings of one de-identification run (saved as ``DST/deid-config.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ichkit.errors import ConfigError

__all__ = ["DeidConfig"]


@dataclass(frozen=True)
class DeidConfig:
    """How to de-identify a tree; what (SRC, DST) and the key are arguments.

    Attributes
    ----------
    profile
        A profile JSON file; the shipped default profile when None.
    options
        PS3.15 E.3 options to apply, by name, replacing the profile's
        ``apply_options``; None keeps the profile's.
    keep_safe_private
        Apply ``retain_safe_private``: keep the private attributes on the
        profile's safe list (PS3.15 E.3.10); all private attributes are removed
        otherwise.
    workers
        Worker processes (1: in this process).
    dask_address
        Scheduler address of a Dask cluster (``tcp://host:port``); overrides
        ``workers``. DST must be on a file system the Dask workers share.
    quarantine
        Folder for quarantined copies and the site-side report; by default
        ``DST/../<DST name>-quarantine``.
    store
        Mapping store; by default ``<KEYFILE>.mapping.sqlite`` beside the key.
    dry_run
        Read and check every file, write nothing.
    chunk_size
        Files per task sent to a worker.
    max_in_flight
        Tasks in flight per worker (memory stays bounded by it).
    fsync
        fsync each output before it is renamed into place (slower, survives a
        power loss, not only a crash).
    """

    profile: str | None = None
    options: tuple[str, ...] | None = None
    keep_safe_private: bool = False
    workers: int = 1
    dask_address: str | None = None
    quarantine: str | None = None
    store: str | None = None
    dry_run: bool = False
    chunk_size: int = 8
    max_in_flight: int = 4
    fsync: bool = False

    def __post_init__(self) -> None:
        for name in ("workers", "chunk_size", "max_in_flight"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError("expected an integer >= 1", field=name, value=value)
        if self.options is not None and not isinstance(self.options, tuple):
            raise ConfigError(
                "expected a tuple of option names", field="options", value=self.options
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        data = asdict(self)
        data["options"] = None if self.options is None else list(self.options)
        return data
