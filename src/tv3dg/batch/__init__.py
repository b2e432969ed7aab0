"""Many generations at once on Ray (`tv3dg batch`): across cores, GPUs and nodes, resumable.

Ray is an optional extra (`pip install 'tv3dg[batch]'`), imported only when a batch runs.
"""

from tv3dg.batch.runner import run_batch

__all__ = ["run_batch"]
