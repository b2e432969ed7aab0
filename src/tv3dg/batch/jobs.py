"""Reading a jobs file (`.txt`: one prompt a line; `.jsonl`: one job a line) into resolved jobs.

Every job's config is resolved here, in the driver, before anything runs: a typo in a jobs file
or an override is one error naming its line, not a failure discovered hours into a batch. The
job id is a readable slug of the prompt plus a short hash of the resolved config, so the same
job always lands in the same folder (which is what makes a rerun skip or resume it).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tv3dg.config import deep_merge, dump_yaml, merge_overrides
from tv3dg.errors import UserError
from tv3dg.pipeline.config import GenerateConfig, build_config

JOB_KEYS = ("prompt", "image", "mode", "loss", "seed", "steps", "config", "overrides", "id", "tags")
_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str,), "image": (str,), "mode": (str,), "loss": (str,), "seed": (int,), "steps": (int,),
    "config": (str,), "overrides": (list,), "id": (str,), "tags": (dict,),
}
# Job keys that set one config key each (as the same flags of `tv3dg generate` do).
CONFIG_KEYS = {"prompt": ("prompt",), "image": ("image",), "seed": ("seed",), "steps": ("steps",),
               "mode": ("prior", "ip_mode"), "loss": ("distill", "loss")}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SLUG_CHARS = 40
HASH_CHARS = 8


@dataclass(frozen=True)
class Job:
    id: str
    prompt: str
    config: GenerateConfig
    where: str  # "jobs.jsonl:3" or "job 3": where to point the user
    tags: dict = field(default_factory=dict)


def read_jobs_file(path: str | Path) -> list[tuple[str, dict]]:
    """(where, raw job dict) per non-blank line; `#` starts a comment line in a .txt file."""
    path = Path(path)
    if path.suffix not in (".txt", ".jsonl"):
        raise UserError(f"jobs file '{path}' must be a .txt (one prompt a line) or .jsonl (one job a line) file")
    if not path.is_file():
        raise UserError(f"jobs file '{path}' does not exist")
    raw: list[tuple[str, dict]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or (path.suffix == ".txt" and text.startswith("#")):
            continue
        where = f"{path}:{number}"
        if path.suffix == ".txt":
            raw.append((where, {"prompt": text}))
            continue
        try:
            job = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: not valid JSON ({err.msg}); write one JSON object a line") from None
        raw.append((where, job))
    if not raw:
        raise UserError(f"jobs file '{path}' holds no job")
    return raw


def check_job(where: str, job: Any) -> dict:
    """The job dict, or a one-line error naming `where` and the offending key."""
    if not isinstance(job, dict):
        raise UserError(f"{where}: a job must be a JSON object like {{\"prompt\": \"a red cube\"}}")
    unknown = sorted(set(job) - set(JOB_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown job key '{unknown[0]}'; valid keys: {', '.join(JOB_KEYS)}")
    if "prompt" not in job:
        raise UserError(f"{where}: the job has no 'prompt'")
    for key, value in job.items():
        if isinstance(value, bool) or not isinstance(value, _TYPES[key]):
            kind = " or ".join(t.__name__ for t in _TYPES[key])
            raise UserError(f"{where}: job key '{key}' must be a {kind}, got {value!r}")
    if not all(isinstance(o, str) for o in job.get("overrides", [])):
        raise UserError(f"{where}: 'overrides' must be a list of \"key=value\" strings")
    if "id" in job and not _ID.fullmatch(job["id"]):
        raise UserError(f"{where}: id '{job['id']}' must be a folder name of letters, digits, '.', '_' or '-'")
    return job


def resolve_job(where: str, job: dict, base_dir: Path, overrides: Sequence[str] = (), preset: str | None = None) -> Job:
    """Defaults <- preset <- command-line overrides <- the job's own fields <- the job's own overrides."""
    job = check_job(where, job)
    updates = merge_overrides({}, list(overrides))
    for key, path in CONFIG_KEYS.items():
        if key in job:
            value = _path(job[key], base_dir) if key == "image" else job[key]
            updates = deep_merge(updates, _nested(path, value))
    config_name = job.get("config", preset)
    if config_name is not None and config_name.endswith((".yaml", ".yml")):
        config_name = _path(config_name, base_dir)
    try:
        config = build_config(config_name, updates, job.get("overrides", []))
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    return Job(job.get("id") or job_id(config), config.prompt, config, where, dict(job.get("tags", {})))


def load_jobs(jobs: str | Path | Sequence[dict], overrides: Sequence[str] = (), preset: str | None = None) -> list[Job]:
    """Resolve a jobs file or a list of job dicts; ids must be unique within the batch."""
    if isinstance(jobs, (str, Path)):
        raw, base_dir = read_jobs_file(jobs), Path(jobs).resolve().parent
    else:
        raw, base_dir = [(f"job {i}", job) for i, job in enumerate(jobs, start=1)], Path.cwd()
        if not raw:
            raise UserError("the batch holds no job")
    resolved: list[Job] = []
    seen: dict[str, str] = {}
    for where, job in raw:
        item = resolve_job(where, job, base_dir, overrides, preset)
        if item.id in seen:
            raise UserError(f"{where}: job id '{item.id}' repeats {seen[item.id]} (the same job twice?); "
                            "remove one or give it its own 'id'")
        seen[item.id] = where
        resolved.append(item)
    return resolved


def job_id(config: GenerateConfig) -> str:
    """`a-red-striped-cube-1f2e3d4c`: the prompt's slug and a hash of the whole resolved config."""
    slug = re.sub(r"[^a-z0-9]+", "-", config.prompt.lower()).strip("-")[:SLUG_CHARS].rstrip("-") or "job"
    return f"{slug}-{hashlib.sha256(dump_yaml(config).encode()).hexdigest()[:HASH_CHARS]}"


def _nested(path: tuple[str, ...], value: Any) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


def _path(value: str, base_dir: Path) -> str:
    """A path from the jobs file, relative to that file's folder."""
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base_dir / path)
