"""What the ablation leaves behind: the figure (rows = variants, columns = cases, a front and a back view each)
and docs/ablation.md (table, paired comparisons, the four claims, cost)."""

from __future__ import annotations

from pathlib import Path

from ablation_analysis import METRICS, TERMS
from ablation_grid import DEFAULT, Grid, image_name, job_id
from ablation_ledger import CELL, Ledger
from ablation_stats import MIN_CASES, NEGLIGIBLE
from PIL import Image, ImageDraw

from tv3dg.pipeline.run import HISTORY_WINDOW

LABEL_WIDTH = 130
HEADER = 2 * CELL + 14


def figure(grid: Grid, jobs_folder: Path, path: Path, ledger: Ledger, wanted: dict[str, str]) -> Path:
    """Rows = variants, columns = cases (first seed); the header shows each case's text and visual prompt.
    Each cell is the front and back view the ledger keeps for that job's current config (collected
    jobs only): eyes in the right half are a front seen from behind."""
    seed = grid.seeds[0]
    width = 2 * CELL
    sheet = Image.new("RGB", (LABEL_WIDTH + width * len(grid.cases), HEADER + CELL * len(grid.variants)), "white")
    draw = ImageDraw.Draw(sheet)
    for col, case in enumerate(grid.cases):
        x = LABEL_WIDTH + col * width
        for line, words in enumerate((case.kind, *case.prompt.split()[1:])):
            draw.text((x + 2, 2 + 11 * line), words, fill="black")
        if case.image is not None:
            sheet.paste(Image.open(jobs_folder / image_name(case.image)).convert("RGB").resize((CELL, CELL)), (x, HEADER - CELL - 4))
    for row, variant in enumerate(grid.variants):
        y = HEADER + row * CELL
        draw.text((4, y + CELL // 2 - 6), variant.name, fill="black")
        for col, case in enumerate(grid.cases):
            jid = job_id(variant, case, seed)
            kept = ledger.views(jid, wanted[jid]) if jid in wanted else None
            if kept is not None:
                sheet.paste(Image.open(kept).convert("RGB"), (LABEL_WIDTH + col * width, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def cell(stat: dict) -> str:
    if stat["n"] == 0:
        return "-"
    low, high = stat["ci95"]
    std = "" if stat["seed_std"] != stat["seed_std"] else f" ±{stat['seed_std']:.2f}"
    return f"{stat['mean']:.2f}{std} [{low:.2f}, {high:.2f}]"


def diff_cell(stat: dict) -> str:
    if stat["n"] == 0:
        return "-"
    low, high = stat["ci95"]
    mark = {"+": " **↑**", "-": " **↓**", "0": ""}[stat["sign"]]
    return f"{stat['mean']:+.2f} [{low:+.2f}, {high:+.2f}]{mark}"


def term_note(variant: str, terms: dict[str, float]) -> str:
    """`variant`'s guidance terms; those added to the classifier term beside their share of it."""
    classifier = terms.get("classifier_rms")
    parts = []
    for term, size in terms.items():
        added = term in ("difference_rms", "pag_rms")
        share = f" ({size / classifier:.1%} of the classifier term)" if classifier and added else ""
        parts.append(f"{TERMS[term]} {size:.3g}{share}")
    return f"`{variant}`: " + ", ".join(parts)


def progress_lines(progress: dict, missing: list[dict]) -> list[str]:
    """Jobs done per variant and seed, then every job that failed or ran another config, by name."""
    seeds = sorted({seed for per_seed in progress.values() for seed in per_seed})
    lines = ["## Progress", "", "Jobs done of the grid's, per variant and seed.", "",
             "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---" * (len(seeds) + 1) + "|"]
    for name, per_seed in progress.items():
        lines.append(f"| `{name}` | " + " | ".join(f"{per_seed[s][0]}/{per_seed[s][1]}" for s in seeds) + " |")
    failed = [m for m in missing if m["status"] != "not run"]
    lines += ["", "Failed or ran another config: " + (", ".join(f"`{m['id']}` ({m['status']}: {m['reason']})" for m in failed)
                                                    if failed else "none.")]
    return lines


def markdown(results: dict, figure_name: str) -> str:
    grid, summary, pairs = results["grid"], results["summary"], results["paired"]
    quality = ("text", "prompt_all", "style_all", "texture_all", "agreement", "flip", "floaters", "outside_shape", "holes",
               "janus_rate", "multi_faced", "colour_error")
    lines = ["# Ablation in the mini world", ""]
    if grid["quick"]:
        lines += ["> **QUICK GRID (smoke test), NOT the full ablation.** "
                  f"{len(grid['cases'])} cases, {len(grid['seeds'])} seed(s), {grid['steps']} steps instead of "
                  f"{results['estimate']['cases']} cases, {results['estimate']['seeds']} seeds, "
                  f"{results['estimate']['steps']} steps. Its numbers show that every variant runs and how the "
                  "report reads; they are too few and too short to support or refute any claim.", ""]
    partial = not grid["quick"] and bool(results["missing"])
    if partial:
        lines += [f"> **PARTIAL GRID: {len(results['assets'])} of {grid['jobs']} jobs done.** The grid runs in pieces "
                  "(seed by seed); every number below covers only the finished jobs, and the claims are provisional "
                  "until the grid is complete.", ""]
    lines += [f"Command: `{results['command']}`. Machine: {results['machine']}.",
              f"Jobs: {len(results['assets'])} done, {len(results['missing'])} failed or not run, of {grid['jobs']}."]
    ledger = results.get("ledger")
    if ledger:
        lines.append(f"Ledger `{ledger['folder']}`: {ledger['current']} assets of this grid's configs, run at commit(s) "
                     f"{', '.join(ledger['commits']) or '-'} on {'; '.join(ledger['machines']) or '-'}"
                     + (f"; {len(ledger['stale'])} older entries ran other configs and are not used." if ledger["stale"] else "."))
    lines += ["",
              "## Variants", "", "| variant | role | what | loss | overrides | cases |", "|---|---|---|---|---|---|"]
    for v in grid["variants"]:
        lines.append(f"| `{v['name']}` | {v['role']} | {v['label']} | {v['loss']} | {' '.join(v['overrides']) or '-'} | "
                     f"{', '.join(v['kinds'])}{' (' + v['mode'] + ' fusion)' if v['mode'] else ''} |")
    lines += ["", "Cases: " + "; ".join(f"{c['kind']} `{c['prompt']}`" + (f" + image of a {' '.join(reversed(c['image']))}"
                                                                         if c["image"] else "") for c in grid["cases"]),
              f"Seeds: {', '.join(map(str, grid['seeds']))}. Style cases use style fusion and texture cases texture "
              "fusion unless the variant says otherwise; text-only cases use Func Switch. Every job also sets "
              f"{' '.join(grid.get('export_overrides', [])) or 'nothing else'} (outputs only; nothing measured reads them).", "",
              "## Metrics", ""]
    lines += [f"- `{m}` ({'higher' if METRICS[m][1] else 'lower'} is better): {METRICS[m][2]}" for m in METRICS]
    lines += ["", "Cells: mean ±seed-to-seed std (mean over cases of the std across seeds) [95% bootstrap interval, "
              "cases then seeds resampled].", "", "## Results", "",
              "| variant | " + " | ".join(quality) + " | s/asset | UNet calls |", "|---" * (len(quality) + 3) + "|"]
    for name, stats in summary.items():
        lines.append(f"| `{name}` | " + " | ".join(cell(stats[m]) for m in quality)
                     + "".join(f" | {stats[m]['mean']:.0f}" if stats[m]["n"] else " | -" for m in ("seconds", "unet_calls")) + " |")
    lines += ["", f"## Paired difference against the default (`{DEFAULT}`)", "",
              "Variant minus default on the same cases and seeds, mean [95% interval]; **↑**/**↓** only where the "
              f"pairs cover at least {MIN_CASES} cases and the interval excludes zero by more than {NEGLIGIBLE} "
              "(for `flip`, `floaters`, `outside_shape`, `holes`, `janus_rate`, `multi_faced`, `colour_error` lower is better).", "",
              "| variant | " + " | ".join(quality) + " |", "|---" * (len(quality) + 1) + "|"]
    for name, stats in pairs.items():
        lines.append(f"| `{name}` | " + " | ".join(diff_cell(stats[m]) for m in quality) + " |")
    lines += ["", "## Size of the guidance terms", "",
              f"The rms of each term of the update, as each run logs it (mean of its last {HISTORY_WINDOW} steps), "
              "averaged over the variant's assets: a term far smaller than the classifier term cannot move the asset much.", "",
              "| variant | " + " | ".join(TERMS.values()) + " |", "|---" * (len(TERMS) + 1) + "|"]
    for name, terms in results["terms"].items():
        lines.append(f"| `{name}` | " + " | ".join(f"{terms[t]:.3g}" if t in terms else "-" for t in TERMS) + " |")
    lines += ["", "## The four claims", ""]
    for claim in results["claims"]:
        verdict = "holds" if claim["holds"] else "does not hold"
        if grid["quick"]:
            heading = f"not tested (the rule below reads '{verdict}' on the quick grid, which is no finding)"
        elif partial:
            heading = f"provisional: {verdict} on the jobs done so far"
        else:
            heading = f"**{verdict}**"
        lines.append(f"### {claim['claim']}: {heading}")
        lines.append("")
        lines.append("Against each baseline: " + "; ".join(f"`{b}`: {r}" for b, r in claim["per_baseline"].items()) + ".")
        lines.append("")
        for x in claim["absolute"]:
            lines.append(f"- default `{x['metric']}` = {x['mean']:.2f} [{x['ci95'][0]:.2f}, {x['ci95'][1]:.2f}]; "
                         f"{'above' if x['above'] else 'not above'} {x['threshold']}")
        for c in claim["comparisons"]:
            lines.append(f"- `{c['a']}` - `{c['b']}` on `{c['metric']}`: {diff_cell(c)} ({c['reading']})")
        if not claim["comparisons"]:
            lines.append("- no comparison could be made (variants missing from this grid)")
        noted = [term_note(v, results["terms"][v]) for v in claim["variants"] if results["terms"].get(v)]
        if noted:
            lines.append("- guidance terms: " + "; ".join(noted))
        lines.append("")
    lines += ["A claim holds when at least one comparison behind it favours it with an interval that excludes zero "
              "and none goes against it (the visual-prompt claim also needs the default's style and texture "
              "all-three intervals above 0.5).", "", "## Front and back views", "",
              "Each cell is one asset from the front (left) and from behind (right): eyes on the right are "
              "a front seen from behind (Janus).", "",
              f"![rows: variants, columns: cases, seed {grid['seeds'][0]}]({figure_name})", "",
              "## Cost and the full grid", ""]
    estimate = results["estimate"]
    per_asset = ", ".join(f"`{k}` {v['seconds_per_asset']:.0f} s" for k, v in estimate["per_variant"].items())
    lines.append(f"Measured here: {per_asset} "
                 f"per asset at {estimate['steps']} steps (measured seconds per step x {estimate['steps']}"
                 + (" + measured overhead)." if estimate["overhead_measured"] else
                    "; loading, reference views and export are not included: no job of these pieces ran from start to "
                    "end in a batch that finished, which is what measures them)."))
    if grid["steps"] < estimate["steps"]:
        lines.append(f"These are extrapolated from {grid['steps']}-step runs: they miss the cost of SGC and of the "
                     "densified Gaussians (both start later, configs/mini.yaml) and carry the first steps' warm-up, "
                     "so read them as rough.")
    if estimate["complete"]:
        lines.append(f"The full grid ({estimate['jobs']} jobs: {estimate['cases']} cases, {estimate['seeds']} seeds) "
                     f"would take about **{estimate['hours']:.1f} h** with {estimate['workers']} parallel jobs on this machine.")
    if results["missing"]:
        lines += ["", *progress_lines(results["progress"], results["missing"])]
    return "\n".join(lines) + "\n"
