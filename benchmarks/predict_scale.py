"""`cm predict` at scale: posts/s and peak memory on generated posts files of growing size,
at post level and at sentence level, each size in a fresh `cm predict` process.

    .venv/bin/python benchmarks/predict_scale.py --post-model DIR --sentence-model DIR \\
        [--post-sizes 1000,10000,100000] [--sentence-sizes 1000,10000]

The posts are the demo generator's (cm.data.demo, its full ReDSM5-like length mix: about
920 characters on average), written as JSONL. Each size runs as a user runs it (`cm predict
posts.jsonl --model DIR --out predictions.csv --device cpu`); its peak resident memory is the
process's own (wait4's ru_maxrss), its posts/s the wall time over the whole command
(start-up, model load, the check of the whole file, scoring, writing); posts per CPU second
(user + system, all threads) depends less on a busy machine's load than wall time does.
Memory is bounded when the peak stays flat while the file grows: the results give each
size's peak against the smallest size's, and the input and output sizes beside them (a
reader that held the file, or the rows, would grow with them); the script fails (exit 1)
when a peak passes ``--bound`` times the smallest size's.
Results: benchmarks/results/predict-<time>/ (results.json, results.md).
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_dir import write_results

from cm.data.demo import write_demo

ROOT = Path(__file__).resolve().parents[1]
CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"


def posts_file(folder: Path, n: int) -> Path:
    """``n`` demo posts as JSONL (post_id, text)."""
    generated = write_demo(folder / f"demo-{n}", n_posts=n, seed=2026)
    path = folder / f"posts-{n}.jsonl"
    with open(generated / "redsm5" / "redsm5_posts.csv", newline="", encoding="utf-8") as src, \
            open(path, "w", encoding="utf-8") as out:
        for row in csv.DictReader(src):
            out.write(json.dumps({"post_id": row["post_id"], "text": row["text"]}) + "\n")
    shutil.rmtree(generated)
    return path


def measure(model: Path, posts: Path, out: Path, options: list[str]) -> dict:
    """One `cm predict` process: wall seconds, CPU seconds, peak RSS, rows written."""
    command = [CM, "predict", str(posts), "--model", str(model), "--out", str(out),
               "--device", "cpu", *options]
    started = time.perf_counter()
    with open(out.with_suffix(".log"), "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"cm predict failed:\n{out.with_suffix('.log').read_text()[-3000:]}")
    rows = sum(1 for _ in out.open(encoding="utf-8")) - 1
    count = sum(1 for _ in posts.open(encoding="utf-8"))
    return {"posts": count, "rows": rows, "wall_s": round(wall, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "posts_per_s": round(count / wall, 1),
            "posts_per_cpu_s": round(count / max(usage.ru_utime + usage.ru_stime, 1e-9), 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "input_mb": round(posts.stat().st_size / 2**20, 1),
            "output_mb": round(out.stat().st_size / 2**20, 1)}


def markdown(result) -> str:
    lines = [f"# `cm predict` at scale, {result['when']}", "",
             f"{result['machine']}, torch threads {result['threads']}, load average "
             f"{result['load_before']} before / {result['load_after']} after. Demo posts "
             "(ReDSM5-like lengths), JSONL in, CSV out, one fresh process per row: "
             f"`cm predict posts.jsonl --model DIR --out predictions.csv {result['options']}`.",
             "",
             "| level | model | posts | rows | wall s | CPU s | posts/s | posts/CPU s "
             "| peak RSS MB | peak / smallest | input MB | output MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for level, block in result["levels"].items():
        first = block["runs"][0]["peak_rss_mb"]
        for row in block["runs"]:
            lines.append(f"| {level} | {block['model']} | {row['posts']:,} | {row['rows']:,} | "
                         f"{row['wall_s']} | {row['cpu_s']} | {row['posts_per_s']} | "
                         f"{row['posts_per_cpu_s']} | "
                         f"{row['peak_rss_mb']} | {row['peak_rss_mb'] / first:.2f} | "
                         f"{row['input_mb']} | {row['output_mb']} |")
    return "\n".join(lines) + "\n"


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--post-model", type=Path, help="A post-level checkpoint/ directory "
                        "(e.g. from `cm run experiments/demo-posts.toml`).")
    parser.add_argument("--sentence-model", type=Path, help="A sentence-level checkpoint/ "
                        "directory (e.g. from `cm run experiments/demo.toml`).")
    parser.add_argument("--post-sizes", type=sizes, default=[1000, 10000, 100000])
    parser.add_argument("--sentence-sizes", type=sizes, default=[1000, 10000])
    parser.add_argument("--batch-size", type=int, help="--batch-size for cm predict "
                        "(default: each checkpoint's train.eval_batch_size)")
    parser.add_argument("--no-evidence", action="store_true",
                        help="Pass --no-evidence (no top sentence per match).")
    parser.add_argument("--bound", type=float, default=1.25, help="Fail (exit 1) when a "
                        "size's peak RSS passes the smallest size's times this (default 1.25).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    plan = {level: (model, counts) for level, model, counts in
            [("post", args.post_model, args.post_sizes),
             ("sentence", args.sentence_model, args.sentence_sizes)] if model}
    if not plan:
        parser.error("give --post-model DIR and/or --sentence-model DIR")
    options = [*(["--batch-size", str(args.batch_size)] if args.batch_size else []),
               *(["--no-evidence"] if args.no_evidence else [])]
    load_before, levels = os.getloadavg()[0], {}
    with tempfile.TemporaryDirectory(prefix="cm-predict-bench-") as scratch:
        folder = Path(scratch)
        for level, (model, counts) in plan.items():
            runs = []
            for n in counts:
                posts = folder / f"posts-{n}.jsonl"
                posts = posts if posts.exists() else posts_file(folder, n)
                runs.append(measure(model, posts, folder / f"{level}-{n}.csv", options))
                print(level, runs[-1], flush=True)
            levels[level] = {"model": str(model), "runs": runs}
    threads = min(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()), os.cpu_count())
    result = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{os.cpu_count()} CPUs", "threads": threads,
              "options": " ".join(["--device", "cpu", *options]),
              "load_before": round(load_before, 2),
              "load_after": round(os.getloadavg()[0], 2), "levels": levels}
    write_results(args.out, "predict", result, markdown(result))
    over = [f"{level} {row['posts']:,} posts: {row['peak_rss_mb']} MB" for level, block in
            levels.items() for row in block["runs"]
            if row["peak_rss_mb"] > args.bound * block["runs"][0]["peak_rss_mb"]]
    if over:
        raise SystemExit(f"peak memory grew with the file beyond {args.bound}x the smallest "
                         f"size's: {'; '.join(over)}")


if __name__ == "__main__":
    main()
