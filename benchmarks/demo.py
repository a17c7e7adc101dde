"""Wall time and result of the README's main job, ``cm run experiments/demo.toml``, as a
user runs it: once with an empty cache (the tokenizer is trained) and once warm.

Reported per run: wall seconds, CPU seconds (user + sys of the command), the load average
around it (on a busy machine wall time says little: CPU time / threads estimates an idle
one), and the demo's figures: test 9-criterion macro-F1 (``post_macro_f1``) and each
criterion's F1 at the tuned threshold. Target (issue 11): <= 3 min wall warm on 2 idle
cores, macro-F1 >= 0.80, every criterion >= 0.5.
Results: benchmarks/results/demo-<time>/results.{json,md}.

    .venv/bin/python benchmarks/demo.py [--warm-only]
"""

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_dir import write_results

ROOT = Path(__file__).resolve().parents[1]
CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"


def run_demo(work: Path, cache: Path) -> dict:
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([CM, "run", str(ROOT / "experiments" / "demo.toml")], cwd=work,
                          env={**os.environ, "CM_CACHE_DIR": str(cache)},
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"cm run failed:\n{done.stderr[-3000:]}")
    run_dir = max((work / "outputs" / "demo").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "test_per_criterion.csv", newline="") as handle:
        criteria = {row["criterion"]: round(float(row["f1"]), 3)
                    for row in csv.DictReader(handle)}
    return {"wall_s": round(wall, 1),
            "cpu_s": round(after.ru_utime - before.ru_utime
                           + after.ru_stime - before.ru_stime, 1),
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "test_post_macro_f1": round(metrics.get("test_tuned/post_macro_f1",
                                                    metrics.get("test/post_macro_f1")), 3),
            "test_criterion_f1": criteria, "best_epoch": metrics.get("best_epoch"),
            "samples_per_s": round(metrics["train/samples_per_s"], 1)}


def markdown(result) -> str:
    lines = [f"# `cm run experiments/demo.toml`, {result['when']}", "",
             f"{result['machine']}, torch threads {result['threads']}. Estimated idle wall = "
             f"CPU s / {result['threads']} (a busy machine inflates wall time, not CPU time).",
             "",
             "| run | wall s | CPU s | est. idle wall s | load before/after | test macro-F1 "
             "| lowest criterion F1 | samples/s |", "|---|---:|---:|---:|---|---:|---|---:|"]
    for name, row in result["runs"].items():
        low = min(row["test_criterion_f1"].items(), key=lambda kv: kv[1])
        idle = row["cpu_s"] / result["threads"]
        lines.append(f"| {name} | {row['wall_s']} | {row['cpu_s']} | {idle:.0f} | "
                     f"{row['load_before']} / {row['load_after']} | "
                     f"{row['test_post_macro_f1']:.3f} | {low[0]} {low[1]:.2f} | "
                     f"{row['samples_per_s']} |")
    last = list(result["runs"].values())[-1]
    lines += ["", "Test F1 per criterion (tuned threshold): " + ", ".join(
        f"{k} {v:.2f}" for k, v in last["test_criterion_f1"].items())]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-only", action="store_true", help="Skip the cold-cache run.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="cm-demo-bench-") as scratch:
        work, cache = Path(scratch), Path(scratch) / "cache"
        if not args.warm_only:
            runs["first (cold cache)"] = run_demo(work, cache)
        else:
            subprocess.run([CM, "run", str(ROOT / "experiments" / "demo.toml"), "--dry-run"],
                           cwd=work, env={**os.environ, "CM_CACHE_DIR": str(cache)},
                           check=True, capture_output=True)
        runs["warm cache"] = run_demo(work, cache)
    threads = min(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()), os.cpu_count())
    result = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{os.cpu_count()} CPUs", "threads": threads, "runs": runs}
    write_results(args.out, "demo", result, markdown(result))


if __name__ == "__main__":
    main()
