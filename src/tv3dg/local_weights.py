"""Find weights that are already on this machine: a folder, or a Hugging Face id in the local cache.

Nothing is ever downloaded: optional models (Shap-E, a depth estimator) are named by a folder or
an id, and a miss becomes a one-line error from the caller naming what to provide.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError


def find_local_model(spec: str) -> Path | None:
    """The folder `spec`, or the cached snapshot of the Hugging Face id `spec`; None when neither exists."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        try:
            return Path(snapshot_download(spec, local_files_only=True))
        except (LocalEntryNotFoundError, HFValidationError):
            return None
    return None
