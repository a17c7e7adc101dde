"""Where ``cm predict`` writes its rows, as they are scored: standard output, or a file
written through a temporary file renamed into place once every row is in (an interrupted or
failed prediction never leaves a partial file behind). CSV has every column from the first
line (``Predictor.columns``; empty where a row has no value), JSON is one array, JSONL one
object per line."""

import csv
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cm.errors import UserError
from cm.preflight import writable_directory

FORMATS = ("csv", "json", "jsonl")


def check_output(out: Path | None, posts_file: Path) -> None:
    """Before any scoring: ``--out`` must be a file path in a writable directory, and not
    the posts file itself."""
    if out is None:
        return
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; name a file, e.g. {out}/predictions.csv")
    if not out.parent.absolute().is_dir():
        raise UserError(f"--out {out}: the directory {out.parent} does not exist; create it "
                        "or choose another path")
    if out.exists() and out.samefile(posts_file):
        raise UserError(f"--out {out} is the posts file {posts_file}: writing would replace "
                        "the input; choose another output file")
    writable_directory(out.parent, "--out directory")


@contextmanager
def row_writer(out: Path | None, fmt: str, columns: list[str]):
    """A function that writes a list of rows, to ``out`` (through a temporary file, renamed
    into place when the block ends without an error) or to standard output (a reader that
    stops early, ``| head``, ends the command quietly with 141 at the error boundary)."""
    if out is None:
        with _formatted(sys.stdout, fmt, columns) as write:
            yield write
        sys.stdout.flush()
        return
    out = Path(out)
    with tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=out.parent,
                                     prefix=f".{out.name}.", delete=False) as handle:
        try:
            with _formatted(handle, fmt, columns) as write:
                yield write
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    mask = os.umask(0)  # the temporary file is private (0600); the result gets the
    os.umask(mask)      # permissions any new file of this user gets
    os.chmod(handle.name, 0o666 & ~mask)
    os.replace(handle.name, out)


@contextmanager
def _formatted(handle, fmt, columns):
    if fmt == "csv":
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        yield writer.writerows
    elif fmt == "jsonl":
        yield lambda rows: handle.writelines(json.dumps(row) + "\n" for row in rows)
    elif fmt == "json":
        yield from _json_array(handle)
    else:
        raise UserError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")


def _json_array(handle):
    """One JSON array written row by row: ``[``, the rows separated by commas, ``]``."""
    written = 0

    def write(rows):
        nonlocal written
        for row in rows:
            handle.write(("[\n" if not written else ",\n") + _indented(row))
            written += 1

    yield write
    handle.write("[]\n" if not written else "\n]\n")


def _indented(row: dict) -> str:
    return "\n".join("  " + line for line in json.dumps(row, indent=2).split("\n"))
