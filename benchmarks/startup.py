"""Start-up of the commands that only list or show, against a bare
``python -c pass``, measured side by side in one run.

Each command is started ``--rounds`` times, interleaved with the bare interpreter (round r
runs every command once, in a rotated order), so a change of machine load hits all of them
alike. Reported per command: median wall seconds, median CPU seconds (user + sys of the
child), and the ratio of each to the bare interpreter's. Target (issue 11): every command
<= 1.5 s wall on 2 idle cores. Results: benchmarks/results/startup-<time>/results.{json,md}.

    .venv/bin/python benchmarks/startup.py [--rounds 7]
"""

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_dir import write_results

ROOT = Path(__file__).resolve().parents[1]
CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cm --version": [CM, "--version"],
    "cm --help": [CM, "--help"],
    "cm plugins": [CM, "plugins"],
    "cm config show": [CM, "config", "show", "experiments/demo.toml"],
}
TARGET_S = 1.5


def timed(argv) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one start."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(rounds: int) -> dict:
    names = list(COMMANDS)
    samples = {name: [] for name in names}
    for name in names:  # one untimed start each: the OS file cache, .pyc files
        timed(COMMANDS[name])
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(timed(COMMANDS[name]))
    bare_wall = statistics.median(w for w, _ in samples["python -c pass"])
    bare_cpu = statistics.median(c for _, c in samples["python -c pass"])
    rows = {}
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        rows[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "wall_vs_bare": round(wall / bare_wall, 1),
                      "cpu_vs_bare": round(cpu / bare_cpu, 1) if bare_cpu else None,
                      "within_target": wall <= TARGET_S}
    return rows


def markdown(result) -> str:
    lines = [f"# Command start-up, {result['when']}", "",
             f"{result['machine']}; load average {result['load']} at the start; "
             f"median of {result['rounds']} rounds; target <= {TARGET_S} s wall.", "",
             "| command | wall s | CPU s | wall / bare | CPU / bare | <= 1.5 s |",
             "|---|---:|---:|---:|---:|:-:|"]
    for name, row in result["commands"].items():
        lines.append(f"| `{name}` | {row['wall_s']:.3f} | {row['cpu_s']:.3f} | "
                     f"{row['wall_vs_bare']} | {row['cpu_vs_bare']} | "
                     f"{'yes' if row['within_target'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    result = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": load,
              "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
              "rounds": args.rounds, "commands": measure(args.rounds)}
    write_results(args.out, "startup", result, markdown(result))


if __name__ == "__main__":
    main()
