"""`tv3dg app` as a lab's shared server, tried as its clients would, through `gradio_client` and
plain HTTP: sign-in, a visual prompt only from an upload, the prompt cap, and run retention.

One signed-in app (`--auth`, `--auth-file`, `--keep-runs 2`) serves every test of this module.
"""

from __future__ import annotations

import http.cookiejar
import json
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from app_server import FAST, SMALL_MESH, local_app  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[1] / "examples" / "yellow_striped_cube.png"
ALICE, BOB = ("alice", "pw-alice"), ("bob", "pw:bob")  # a password may hold ':'


@dataclass
class Server:
    url: str
    runs: Path
    uploads: Path
    cwd: Path
    outside: Path  # a PNG on the server's disk, outside the runs and upload folders


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("server")
    runs, uploads, cwd = root / "runs", root / "uploads", root / "cwd"
    uploads.mkdir()
    cwd.mkdir()
    outside = root / "private" / "photo.png"
    outside.parent.mkdir()
    shutil.copyfile(EXAMPLE, outside)
    accounts = root / "accounts.txt"
    accounts.write_text(f"# lab accounts\n\n{':'.join(BOB)}\n")
    args = ["--auth", ":".join(ALICE), "--auth-file", str(accounts), "--keep-runs", "2", "--max-steps", "20", *FAST, SMALL_MESH]
    with local_app(runs, root / "app.log", *args, cwd=cwd, env={"GRADIO_TEMP_DIR": str(uploads)}) as url:
        yield Server(url, runs, uploads, cwd, outside)


def _client(server: Server, account=ALICE):
    from gradio_client import Client

    return Client(server.url, auth=account, verbose=False)


def _generate(client, prompt: str, image=None, steps: int = 2, seed: int = 0):
    return client.predict(prompt, image, "texture", "vpcsm", steps, seed, api_name="/generate")


def _status(url: str, opener=None, data: bytes | None = None) -> int:
    try:
        with (opener or urllib.request.build_opener()).open(url, data=data, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _run_folders(server: Server) -> set[Path]:
    return set(server.runs.iterdir()) if server.runs.exists() else set()


def test_without_credentials_the_page_and_the_api_are_refused_with_them_they_work(server):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    call = urllib.parse.urljoin(server.url, "gradio_api/call/generate")
    request = json.dumps({"data": ["a cube", None, "texture", "vpcsm", 2, 0]}).encode()
    assert _status(urllib.parse.urljoin(server.url, "config")) == 401  # what the page loads after the login form
    assert _status(call, data=request) == 401
    with pytest.raises(AuthenticationError):
        Client(server.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(server.url, auth=("alice", "wrong"), verbose=False)

    session = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = urllib.parse.urlencode({"username": BOB[0], "password": BOB[1]}).encode()  # the --auth-file account
    assert _status(urllib.parse.urljoin(server.url, "login"), session, login) == 200
    assert _status(urllib.parse.urljoin(server.url, "config"), session) == 200
    before = _run_folders(server)
    _, _, _, _, metrics = _generate(_client(server, BOB), "a red striped cube")
    assert metrics["steps"] == 2 and metrics["prompt"] == "a red striped cube"
    new = _run_folders(server) - before
    assert len(new) == 1 and json.loads((next(iter(new)) / "owner.json").read_text()) == {"user": "bob"}
    views = urllib.parse.urljoin(server.url, f"gradio_api/file={next(iter(new)) / 'views.png'}")
    assert _status(views) == 401 and _status(views, session) == 200  # the run's files too


def _server_path(path: str) -> dict:
    """A visual prompt naming a file on the server, as a client forges it (no upload)."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("trick", ["outside", "symlink", "dotdot"])
def test_a_server_path_is_refused_and_makes_no_run_folder(server, trick, monkeypatch):
    from gradio_client import client as client_module

    if trick == "outside":
        path = str(server.outside)
    elif trick == "symlink":  # a link planted inside the upload folder, pointing out of it
        link = server.uploads / "planted" / "photo.png"
        link.parent.mkdir(exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(server.outside)
        path = str(link)
    else:  # relative to the server's working folder: starts in the uploads, climbs out with `..`
        path = f"../uploads/../private/{server.outside.name}"
        assert (server.cwd / path).resolve() == server.outside.resolve()
    client = _client(server)
    # gradio_client uploads every local file it is given; a forging client sends the path as it is.
    monkeypatch.setattr(client_module.Endpoint, "_upload_file", lambda self, f, data_index: f)
    before = _run_folders(server)
    with pytest.raises(Exception, match="not uploaded"):
        _generate(client, "a red striped cube", _server_path(path))
    assert _run_folders(server) == before


def test_an_uploaded_visual_prompt_is_accepted(server):
    from gradio_client import handle_file

    _, _, _, _, metrics = _generate(_client(server), "a cylinder", handle_file(str(EXAMPLE)))
    kept = Path(metrics["visual_prompt"])
    assert kept.name == "input_image.png" and kept.read_bytes() == EXAMPLE.read_bytes()


def test_a_long_prompt_is_refused_in_one_line(server):
    before = _run_folders(server)
    with pytest.raises(Exception, match=r"^the prompt is 1001 characters long; this app takes at most 1000: shorten it$"):
        _generate(_client(server), "a" * 1001)
    assert _run_folders(server) == before


def test_keep_runs_2_leaves_the_last_two_runs(server):
    client = _client(server)
    prompts = ["a red cube", "a green torus", "a blue sphere"]
    folders = []
    for prompt in prompts:
        before = _run_folders(server)
        _generate(client, prompt)
        folders += list(_run_folders(server) - before)
    assert _run_folders(server) == set(folders[1:])
    assert [json.loads((f / "metrics.json").read_text())["prompt"] for f in sorted(folders[1:])] == prompts[1:]
