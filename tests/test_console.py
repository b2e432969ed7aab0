"""The console of a run shows tv3dg's own progress and warnings only; `--verbose` lets the libraries'
loading notices through (transformers' torchvision notice, diffusers' float32 note, weight-loading bars)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# A short mini-prior run that still loads every model a default run loads (UNet, VAE, text and
# image encoders, the attribute classifier) and writes every output.
SHORT_RUN = [
    "steps=2", "sgc.start_step=0", "sgc.sample_steps=2", "visual_prompt.sample_steps=2",
    "export.mesh.target_faces=500", "export.mesh.texture=false", "export.turntable_frames=2", "export.views=2",
]
OWN_BARS = ("generate", "turntable")  # tqdm descriptions of the bars a generate run draws


def stderr_lines(text: str) -> list[str]:
    """Each line and each progress-bar redraw (tqdm rewrites its line with carriage returns)."""
    return [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]


def is_own(line: str) -> bool:
    return line.startswith("tv3dg:") or line.split(":", 1)[0] in OWN_BARS


def run_generates(tmp_path: Path, *runs: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """One generate per argument tuple, side by side (one thread each), their output in files so that
    neither waits on a full pipe; any still running when this returns (a failure) is killed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TV3DG_VERBOSE", None)
    started = []
    try:
        for index, extra in enumerate(runs):
            out, err = (open(tmp_path / f"run{index}.{name}", "w+") for name in ("out", "err"))
            command = [sys.executable, "-m", "tv3dg.cli", "generate", "--prompt", "a red cube",
                       "--out", str(tmp_path / f"run{index}"), *SHORT_RUN, *extra]
            started.append((subprocess.Popen(command, stdout=out, stderr=err, env=env), out, err))
        done = []
        for process, out, err in started:
            process.wait(timeout=600)
            out.seek(0)
            err.seek(0)
            done.append(subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read()))
        return done
    finally:
        for process, out, err in started:
            if process.poll() is None:
                process.kill()
                process.wait()
            out.close()
            err.close()


@pytest.mark.slow
def test_a_short_generate_prints_no_third_party_notice_unless_verbose(tmp_path):
    quiet, loud = run_generates(tmp_path, (), ("--verbose",))
    assert quiet.returncode == 0, quiet.stderr
    foreign = [line for line in stderr_lines(quiet.stderr) if not is_own(line)]
    assert foreign == []
    assert any(line.startswith("generate:") for line in stderr_lines(quiet.stderr)), "the run's own progress is shown"
    assert "done: 2 steps" in quiet.stdout

    assert loud.returncode == 0, loud.stderr
    shown = [line for line in stderr_lines(loud.stderr) if not is_own(line)]
    # The same run with --verbose shows what the quiet one held back, e.g. diffusers' weight-loading bars.
    assert any("Loading weights" in line or "float32" in line for line in shown), shown
