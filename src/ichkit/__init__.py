"""ichkit: an open toolkit for intracranial hemorrhage (ICH) on head CT.

The package root stays light (no numpy, pandas or torch at import time) so that
``ichkit --help`` answers at once; import the domain packages you need, e.g.
``from ichkit.dicom import load_series`` or ``from ichkit.metrics import
weighted_log_loss``.
"""

from __future__ import annotations

import logging

from ichkit.errors import IchkitError
from ichkit.labels import LABELS, SUBTYPES

__version__ = "0.1.0"

__all__ = ["LABELS", "SUBTYPES", "IchkitError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
