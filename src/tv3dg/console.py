"""What reaches the terminal: tv3dg's own progress bars and warnings, not the notices that
diffusers, transformers and huggingface_hub print while loading weights (a notice that torchvision
is missing, "modules that should be kept in float32: []", one progress bar per model), which ask
nothing of the user.

`tv3dg ... --verbose`, or the environment variable `TV3DG_VERBOSE=1` (which Ray workers started
from this process inherit), shows them again.
"""

from __future__ import annotations

import os

VERBOSE_ENV = "TV3DG_VERBOSE"


def verbose() -> bool:
    """Whether third-party notices should be shown."""
    return os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")


def set_verbose(on: bool) -> None:
    """Show (or hide) third-party notices in this process and in the processes it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    quiet_third_party()


def quiet_third_party() -> None:
    """Apply the current choice to the libraries' own loggers and progress bars."""
    import diffusers
    import huggingface_hub.utils
    import transformers

    for library in (diffusers, transformers):
        if verbose():
            library.utils.logging.set_verbosity_warning()
            library.utils.logging.enable_progress_bar()
        else:
            library.utils.logging.set_verbosity_error()
            library.utils.logging.disable_progress_bar()
    if verbose():
        huggingface_hub.utils.enable_progress_bars()
    else:
        huggingface_hub.utils.disable_progress_bars()
