"""Where the app takes a visual prompt from: only a file uploaded to this app.

A client names its image by a path on the server. Gradio checks that path when it prepares an
event's inputs; this second check, on the path the app is about to read, does not depend on how a
request reached the app: the real path (symlinks and `..` resolved) must lie in the app's upload
folder, so no client can make the server read, copy and show any other file it can reach.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from tv3dg.errors import UserError

UPLOADS_ENV = "GRADIO_TEMP_DIR"  # where Gradio keeps uploads (and its copies of served files)


def uploaded_file(path: str, uploads: Path) -> Path:
    """`path` with links and `..` resolved, or `UserError` when it is not inside `uploads`."""
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(uploads)):
        raise UserError(f"the visual prompt {path} is not a file uploaded to this app; upload the image "
                        "(server paths are not accepted)")
    return real


def private_upload_folder() -> Path:
    """The app's own upload folder: Gradio's `GRADIO_TEMP_DIR` when the user set one, otherwise a
    fresh folder only this user can read, so uploads to other Gradio apps on a shared machine (all
    in one `/tmp/gradio` by default) are not files of this app; removed when the app exits. Set
    before Gradio is imported, which reads some of its paths once."""
    if not os.environ.get(UPLOADS_ENV):
        folder = tempfile.mkdtemp(prefix="tv3dg-app-uploads-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[UPLOADS_ENV] = folder
    return Path(os.environ[UPLOADS_ENV])
