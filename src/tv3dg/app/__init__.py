"""`tv3dg app`: a Gradio web front end over the same `generate` as the command line.

Gradio is an optional extra; `require_gradio` turns its absence into a one-line error that names
the extra to install.
"""

from __future__ import annotations

import os
from types import ModuleType

from tv3dg.errors import UserError


def require_gradio() -> ModuleType:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from an offline app
    try:
        import gradio
    except ImportError:
        raise UserError("the app needs Gradio; install it with: pip install 'tv3dg[app]'") from None
    return gradio
