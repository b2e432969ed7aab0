"""Where a benchmark's numbers came from: the command line and the machine (CPU model), written
beside the numbers in every results file, so each published number can be traced and rerun."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe_machine(device: str = "cpu") -> str:
    """CPU model, logical CPUs, the load average now (other work on the machine) and the GPU if one is used."""
    text = f"{cpu_name()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}"
    if device.startswith("cuda"):
        import torch

        text += f", {torch.cuda.get_device_name()}"
    return text


def command_line(script: str) -> str:
    """How this benchmark was called, e.g. `python benchmarks/mini_quality.py --losses vpcsm seed=1`."""
    return " ".join(["python", f"benchmarks/{Path(script).name}", *sys.argv[1:]])
