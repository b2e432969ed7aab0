"""The ablation benchmark end to end: the quick grid on two cases, a few steps, through `tv3dg batch`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import ablation  # noqa: E402
import forward_stops  # noqa: E402
from ablation_grid import Grid, all_cases, check_coverage  # noqa: E402
from ablation_analysis import pair_reading  # noqa: E402
from ablation_ledger import Ledger  # noqa: E402
from ablation_stats import bootstrap_interval, by_case, paired, summarise  # noqa: E402

# The ablation measures the splats, not the mesh: a coarse mesh without a texture keeps the jobs short.
FAST = ["export.turntable_frames=2", "sgc.sample_steps=2", "visual_prompt.sample_steps=2",
        "export.mesh.resolution=32", "export.mesh.texture=false", "export.mesh.target_faces=0"]


def test_full_grid_covers_the_world_with_three_seeds():
    cases = all_cases()
    check_coverage(cases)  # every shape, colour and pattern appears
    grid = Grid.build(quick=False)
    assert len(grid.cases) >= 12 and len(grid.seeds) >= 3 and {c.kind for c in grid.cases} == {"text", "style", "texture"}
    assert all(c.image[0] == c.prompt.split()[-1] for c in cases if c.kind == "texture")
    assert all(c.image[0] != c.prompt.split()[-1] for c in cases if c.kind == "style")


def test_paired_difference_is_significant_only_when_its_interval_excludes_zero():
    base = {(f"case{c}", s): 0.5 for c in range(6) for s in range(3)}
    better = {k: v + 0.25 for k, v in base.items()}
    noisy = {k: v + (0.25 if (int(k[0][-1]) + k[1]) % 2 else -0.25) for k, v in base.items()}
    assert paired(better, base)["sign"] == "+"
    assert paired(noisy, base)["sign"] == "0"
    five = {k: v for k, v in better.items() if k[0] != "case5"}
    assert paired(five, base)["sign"] == "0"  # every case agrees, but 5 cases are too few to call it
    stats = summarise(better)
    assert stats["mean"] == pytest.approx(0.75) and stats["seed_std"] == pytest.approx(0.0) and stats["n"] == 18


def test_the_bootstrap_draws_each_case_s_own_seeds_and_matches_a_replicate_by_replicate_loop():
    # Case means are exactly 1 or 3 whatever seeds are drawn, so every replicate mean is 1, 2 or 3:
    # a draw that reached a shorter case's padding would give something else.
    uneven = {("a", 0): 1.0, ("a", 1): 1.0, ("a", 2): 1.0, ("b", 0): 3.0}
    low, high = bootstrap_interval(uneven)
    assert low in (1.0, 2.0) and high in (2.0, 3.0)
    # One case of two seeds: only redrawing its seeds moves the mean (to 0, 0.5 or 1); cases alone would not.
    assert bootstrap_interval({("a", 0): 0.0, ("a", 1): 1.0}) == (0.0, 1.0)
    rng = np.random.default_rng(7)
    values = {(f"case{c}", s): float(rng.random() + 0.1 * c) for c in range(10) for s in range(1 + c % 3)}
    groups = list(by_case(values).values())
    loop = np.random.default_rng(1)
    means = [np.mean([np.mean(loop.choice(groups[i], size=len(groups[i]))) for i in loop.integers(len(groups), size=len(groups))])
             for _ in range(4000)]
    # The loop's 4000 replicates put its 2.5% and 97.5% points within 0.007 of the exact ones over 8 seeds
    # (0.004 typical); 200000 vectorised replicates stand in for the exact interval.
    assert bootstrap_interval(values, replicates=200_000) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=0.015)


def _not_standard_json(constant: str) -> None:
    raise AssertionError(f"{constant} in the ledger")


def test_the_ledger_is_standard_json_and_a_measure_not_taken_reads_back_as_nan(tmp_path):
    ledger = Ledger(tmp_path)
    asset = {"id": "vpcsm__text__s0", "variant": "vpcsm", "seed": 0, "text": 0.75, "overhead": float("nan")}
    ledger.record(asset, "f00d", {"commit": "abc", "machine": "cpu", "recorded": "2026-12-02"}, None)
    ledger.save()
    line = (tmp_path / "assets.jsonl").read_text()
    assert json.loads(line, parse_constant=_not_standard_json)["overhead"] is None  # readable by jq and JavaScript
    again = Ledger.open(tmp_path).current("vpcsm__text__s0", "f00d")
    assert again["text"] == 0.75 and again["overhead"] != again["overhead"]  # NaN again, as the estimate expects


def test_two_processes_saving_one_ledger_keep_each_others_entries(tmp_path):
    made = {"commit": "abc", "machine": "cpu", "recorded": "2026-12-02"}
    long_piece, report_only = Ledger.open(tmp_path), Ledger.open(tmp_path)  # both opened on an empty ledger
    report_only.record({"id": "csm__text__s0", "text": 1.0}, "f1", made, None)
    report_only.save()
    long_piece.record({"id": "vpcsm__text__s0", "text": 0.5}, "f2", made, None)
    long_piece.save()  # saved last, from a copy that never saw csm's entry
    assert {e["id"] for e in Ledger.open(tmp_path).entries.values()} == {"csm__text__s0", "vpcsm__text__s0"}


# A stand-in for `tv3dg batch`: logs each stop signal it gets, then exits 130 as the batch does.
CHILD = """
import signal, sys, time
from pathlib import Path
log = Path(sys.argv[1])
def note(signum, frame):
    with log.open("a") as f:
        f.write(signal.Signals(signum).name + "\\n")
signal.signal(signal.SIGINT, note)
signal.signal(signal.SIGTERM, note)
log.with_suffix(".ready").touch()
while not log.exists():
    time.sleep(0.05)
time.sleep(1.0)  # time for a second, duplicated signal to arrive
sys.exit(130)
"""

# The ablation script's side: run the child through call_forwarding_stops and print its exit code.
DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
from forward_stops import call_forwarding_stops
print(call_forwarding_stops([sys.executable, "-c", sys.argv[2], sys.argv[3]]))
"""


@pytest.mark.parametrize("how", ["kill -TERM of the script alone", "Ctrl-C in its terminal"])
def test_a_stop_sent_to_the_ablation_script_reaches_its_batch_exactly_once(tmp_path, how):
    log = tmp_path / "signals.log"
    assert ablation.call_forwarding_stops is forward_stops.call_forwarding_stops  # what the script runs its batch with
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(Path(ablation.__file__).parent), CHILD, str(log)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not log.with_suffix(".ready").exists():
        assert time.monotonic() < deadline and driver.poll() is None, "the child never started"
        time.sleep(0.05)
    if how.startswith("kill"):
        driver.send_signal(signal.SIGTERM)
    else:
        os.killpg(driver.pid, signal.SIGINT)  # a terminal signals its whole foreground process group
    out, _ = driver.communicate(timeout=60)
    assert driver.returncode == 0 and out.strip() == "130"  # the script lives on to report
    assert log.read_text().split() == ["SIGTERM" if how.startswith("kill") else "SIGINT"]


@pytest.mark.slow
@pytest.mark.ray
def test_quick_grid_on_two_cases_runs_in_pieces_and_reports(tmp_path):
    common = ["--quick", "--quiet", "--cases", "2", "--seeds", "1", "--steps", "2", "--variants", "vpcsm",
              "vpcsm_texture_fusion", "csm", "--ledger", str(tmp_path / "ledger"), "--doc", str(tmp_path / "doc" / "ablation.md")]
    argv = [*common, "--out", str(tmp_path / "run"), *FAST]
    piece = ablation.main([*argv, "--limit", "2"])  # a first piece: the first two jobs of the run order
    assert len(piece["assets"]) == 2 and len(piece["missing"]) == 3
    # the run order keeps a case's variants together: the text case's two variants ran, the style case's three wait
    assert piece["progress"] == {"vpcsm": {0: (1, 2)}, "vpcsm_texture_fusion": {0: (0, 1)}, "csm": {0: (1, 2)}}
    assert "| `vpcsm` | 1/2 |" in (tmp_path / "doc" / "ablation.md").read_text()
    results = ablation.main(argv)  # the rest
    ran = [json.loads(line)["id"] for line in (tmp_path / "run" / "runs" / "index.jsonl").read_text().splitlines()]
    assert len(ran) == 3 and set(ran).isdisjoint(a["id"] for a in piece["assets"])  # only the jobs still to do ran
    assert [c["kind"] for c in results["grid"]["cases"]] == ["text", "style"]
    assert results["missing"] == [] and len(results["assets"]) == results["grid"]["jobs"] == 5  # fusion: style only
    default = results["summary"]["vpcsm"]
    # each summary is the mean over the variant's assets that measured the metric (the text rate on the text case only)
    vpcsm_assets = [a for a in results["assets"] if a["variant"] == "vpcsm"]
    for metric in ("text", "prompt_all", "style_all", "agreement", "flip", "floaters", "outside_shape"):
        values = [a[metric] for a in vpcsm_assets if metric in a and a[metric] == a[metric]]  # NaN: not measured
        assert default[metric]["n"] == len(values) > 0
        assert default[metric]["mean"] == pytest.approx(sum(values) / len(values))
    assert default["text"]["n"] == 1 and default["prompt_all"]["n"] == 2  # text: the text case; prompt_all: both cases
    assert default["unet_calls"]["mean"] > 0
    # the guidance terms each variant adds: PAG only in VPCSM, and smaller than the classifier term
    assert 0 < results["terms"]["vpcsm"]["pag_rms"] < results["terms"]["vpcsm"]["classifier_rms"]
    assert "pag_rms" not in results["terms"]["csm"]
    assert set(results["paired"]) == {"vpcsm_texture_fusion", "csm"}
    assert [c["key"] for c in results["claims"]] == ["csm_vs_sds", "visual_prompt", "pag", "sgc"]
    claims = {c["key"]: c for c in results["claims"]}
    assert claims["csm_vs_sds"]["per_baseline"] == {"sds": "not compared", "sds_cfg100": "not compared", "csd": "not compared"}
    # vpcsm against csm, both in the quick grid; PAG at scale 5 is not in it
    assert set(claims["pag"]["per_baseline"]) == {"vpcsm vs csm", "vpcsm_pag5 vs csm"}
    assert claims["pag"]["per_baseline"]["vpcsm vs csm"] != "not compared" == claims["pag"]["per_baseline"]["vpcsm_pag5 vs csm"]
    assert "Against each baseline: `vpcsm vs csm`:" in (tmp_path / "doc" / "ablation.md").read_text()
    assert {"janus_rate", "multi_faced", "colour_error"} <= set(default)  # the world's own measures reach the report
    doc = (tmp_path / "doc" / "ablation.md").read_text()
    assert "QUICK GRID" in doc and doc.count("### ") == 4
    width, height = Image.open(tmp_path / "doc" / "ablation.png").size
    assert width > 2 * 2 * 64 and height > 3 * 64  # 2 case columns of a front and a back view, 3 variant rows
    assert json.loads((tmp_path / "run" / "results.json").read_text())["grid"]["jobs"] == 5
    index = (tmp_path / "run" / "runs" / "index.jsonl").read_text()
    again = ablation.main(argv)  # a rerun finds every job in the ledger, runs nothing, reports the same assets
    assert (tmp_path / "run" / "runs" / "index.jsonl").read_text() == index
    assert [a["text" if "text" in a else "style_all"] for a in again["assets"]] == \
        [a["text" if "text" in a else "style_all"] for a in results["assets"]]

    # Another working folder, the same ledger: nothing runs, the same assets are reported, the
    # figure comes from the ledger's front and back views.
    elsewhere = ablation.main([*common, "--out", str(tmp_path / "elsewhere"), *FAST])
    assert not (tmp_path / "elsewhere" / "runs").exists()
    assert [a["id"] for a in elsewhere["assets"]] == [a["id"] for a in results["assets"]]
    assert elsewhere["assets"][0]["agreement"] == results["assets"][0]["agreement"]
    kept = sorted((tmp_path / "ledger" / "views").glob("*.png"))
    assert len(kept) == 5 and Image.open(kept[0]).size == (2 * 64, 64)
    assert Image.open(tmp_path / "doc" / "ablation.png").size == (width, height)
    # A changed config makes the recorded assets stale instead of mixing them in.
    changed = ablation.main([*common, "--out", str(tmp_path / "elsewhere"), "--report-only", *FAST, "sgc.sample_steps=3"])
    assert changed["assets"] == [] and len(changed["ledger"]["stale"]) == 5


def test_each_baseline_gets_its_own_reading_by_the_claims_rule():
    """A pair holds when one of its metrics favours the claim and none goes against it."""
    assert pair_reading(["for", "no difference"]) == "holds"
    assert pair_reading(["for", "against"]) == "does not hold"
    assert pair_reading(["no difference", "too few cases to tell: fewer than 6"]) == "no difference"
    assert pair_reading(["too few cases to tell: fewer than 6"]) == "too few cases to tell: fewer than 6"
    assert pair_reading([]) == "not compared"
