"""Where the benchmark scripts put what they measured: ``results/<kind>-<UTC time>/`` with
``results.json`` and ``results.md``, the markdown also printed."""

import json
import time
from pathlib import Path


def write_results(out: Path, kind: str, result: dict, markdown: str) -> Path:
    directory = out / time.strftime(f"{kind}-%Y%m%d-%H%M%S", time.gmtime())
    directory.mkdir(parents=True)
    (directory / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (directory / "results.md").write_text(markdown)
    print(markdown, end="")
    print(f"results: {directory}")
    return directory
