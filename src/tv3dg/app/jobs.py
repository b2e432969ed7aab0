"""Running one generation for the app: `generate` on a worker thread that the page polls for
progress and a preview, stopped at a step boundary through the loop's own `StopRequest`."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
from torch import Tensor

from tv3dg.app.inputs import AppSettings, PageInputs, config_for
from tv3dg.app.runs import discard_unfinished, new_run_dir, record_owner
from tv3dg.export.video import to_uint8
from tv3dg.gaussians.model import Gaussians
from tv3dg.pipeline.config import GenerateConfig
from tv3dg.pipeline.interrupt import StopRequest
from tv3dg.pipeline.outputs import render_views
from tv3dg.pipeline.run import WHITE, GenerationResult, generate

POLL_S = 0.5  # how often the page hears from a running job
PREVIEW_EVERY_S = 2.0  # how often the live Gaussians are rendered for the preview
PREVIEW_SIZE = 128


@dataclass(frozen=True)
class Progress:
    step: int  # 0 while the prior loads and the visual prompt / SGC references are sampled
    total: int
    loss: float | None
    eta_s: float | None
    preview: np.ndarray | None  # HxWx3 uint8, only when a new one was rendered

    def describe(self) -> str:
        if self.step == 0:
            return "preparing: loading the prior, sampling the visual prompt and SGC references"
        if self.step >= self.total:
            return f"step {self.step}/{self.total}: writing the asset, mesh, turntable and metrics"
        eta = f" · about {self.eta_s:.0f} s left" if self.eta_s is not None else ""
        return f"step {self.step}/{self.total} · loss {self.loss:.4g}{eta}"


@dataclass(frozen=True)
class Finished:
    result: GenerationResult


class Job:
    """`generate(config, run_dir)` on its own thread; `progress()` is safe to call from another."""

    def __init__(self, config: GenerateConfig, run_dir: Path, stop: StopRequest) -> None:
        self.config, self.run_dir, self.stop = config, run_dir, stop
        self._lock = threading.Lock()
        self._step, self._loss, self._eta = 0, None, None
        self._preview: np.ndarray | None = None
        self._first: tuple[int, float] | None = None
        self._last_preview = 0.0
        self._result: GenerationResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"tv3dg-job-{run_dir.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            self._result = generate(self.config, self.run_dir, progress=False, on_step=self._on_step, stop=self.stop)
        except BaseException as err:  # handed to the page's thread by result()
            self._error = err

    def _on_step(self, step: int, logs: dict[str, float], gaussians: Gaussians) -> None:
        now = time.monotonic()
        preview = None
        if now - self._last_preview >= PREVIEW_EVERY_S or step == self.config.steps:
            preview = to_uint8(_front_view(gaussians, self.config)[0].permute(1, 2, 0))
            self._last_preview = now
        with self._lock:
            if self._first is None:
                self._first = (step, now)
            first_step, first_time = self._first
            rate = (now - first_time) / (step - first_step) if step > first_step else None
            self._step, self._loss = step, logs.get("loss")
            self._eta = rate * (self.config.steps - step) if rate is not None else None
            if preview is not None:
                self._preview = preview

    def progress(self, wait_s: float = 0.0) -> Progress:
        """The latest state (waiting up to `wait_s` for the job to end first); each preview once."""
        self._thread.join(wait_s)
        with self._lock:
            preview, self._preview = self._preview, None
            return Progress(self._step, self.config.steps, self._loss, self._eta, preview)

    def result(self) -> GenerationResult:
        if self._error is not None:
            raise self._error
        assert self._result is not None, "result() before the job ended"
        return self._result


def _front_view(gaussians: Gaussians, config: GenerateConfig) -> Tensor:
    export = replace(config.export, views=1)
    return render_views(gaussians, export, PREVIEW_SIZE, WHITE)


def run_job(settings: AppSettings, inputs: PageInputs, stop: StopRequest,
            user: str | None = None) -> Iterator[Progress | Finished]:
    """Validate, make the run's folder, run; yields `Progress` while it runs and `Finished` at the end.

    Bad input raises `UserError` before any folder is made; a run that fails before writing an
    asset leaves no folder. Closing the iterator (the page went away) stops the run at the next
    step boundary and waits for its outputs. `user`: the signed-in user, recorded as the run's
    owner. A finished run applies the retention bounds to the older ones.
    """
    config = config_for(settings, inputs)
    run_dir = new_run_dir(settings.runs, config.prompt)
    if user is not None:
        record_owner(run_dir, user)
    if config.image:  # keep the upload with the run, so the folder is complete on its own
        upload = Path(config.image)
        kept = run_dir / f"input_image{upload.suffix.lower()}"
        shutil.copyfile(upload, kept)
        config = replace(config, image=str(kept))
    job = Job(config, run_dir, stop)
    job.start()
    try:
        while job.running():
            yield job.progress(POLL_S)
    finally:
        if job.running():
            stop.request()
            job.join()
    try:
        result = job.result()
    except BaseException:
        discard_unfinished(run_dir)
        raise
    settings.retention.prune(settings.runs, result.out_dir)
    yield job.progress()
    yield Finished(result)


class Sessions:
    """The stop request of each browser session's running job, so Stop ends that job only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[str, StopRequest] = {}

    def open(self, session: str) -> StopRequest:
        with self._lock:
            stop = self._stops[session] = StopRequest()
            return stop

    def close(self, session: str, stop: StopRequest) -> None:
        with self._lock:
            if self._stops.get(session) is stop:
                del self._stops[session]

    def stop(self, session: str) -> bool:
        with self._lock:
            stop = self._stops.get(session)
        if stop is not None:
            stop.request()
        return stop is not None
