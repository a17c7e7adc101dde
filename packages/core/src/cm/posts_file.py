"""The posts file ``cm predict`` scores: CSV or JSONL with ``post_id`` and ``text``, read
strictly and one line at a time (memory holds one post and the ids seen, however long the
file). Every row needs a non-empty, unique post id and a non-empty text (a JSON null or a
missing key is no text); a bad row is a UserError naming the file and line, never a row
scored wrong. Messages name ids and lines, never post text."""

import json
from collections.abc import Iterator
from pathlib import Path

from cm.errors import UserError
from cm.textfile import csv_records, text_lines

COLUMNS = ("post_id", "text")


def count_posts(path: Path) -> int:
    """The number of posts in the file, every row checked: the first bad row, or a file
    with no posts, is a UserError. ``cm predict`` asks this before it scores anything, so
    a bad row near the end is refused before any output is written."""
    count = sum(1 for _ in iter_posts(path))
    if not count:
        raise UserError(f"{path}: no posts; give one row per post with post_id and text")
    return count


def iter_posts(path: Path) -> Iterator[tuple[str, str]]:
    """(post_id, text) per row, in the file's order, read as they are asked for."""
    path = Path(path)
    if path.suffix not in (".csv", ".jsonl"):
        raise UserError(f"{path}: expected a .csv or .jsonl file of posts (post_id, text)")
    lines = text_lines(path, "posts file")
    rows = jsonl_rows(path, lines) if path.suffix == ".jsonl" else csv_rows(path, lines)
    return checked(path, rows)


def jsonl_rows(path: Path, lines) -> Iterator[tuple[int, object, object]]:
    for line, item in enumerate(lines, 1):
        if not item.strip():
            continue
        try:
            value = json.loads(item)
        except ValueError as exc:
            raise UserError(f"{path} (line {line}): not JSON ({exc}); write one object "
                            '{"post_id": ..., "text": ...} per line') from None
        if not isinstance(value, dict):
            raise UserError(f"{path} (line {line}): expected a JSON object with post_id and "
                            "text")
        yield line, value.get("post_id"), value.get("text")


def csv_rows(path: Path, lines) -> Iterator[tuple[int, object, object]]:
    records = csv_records(path, lines)
    _, header = next(records, (1, []))
    header = [name.strip() for name in header]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise UserError(f"{path} (line 1): missing column(s) {missing}; found {header}; "
                        "expected post_id,text")
    for line, fields in records:
        if len(fields) != len(header):
            raise UserError(f"{path} (line {line}): {len(fields)} fields where the header has "
                            f"{len(header)}; quote fields holding commas")
        row = dict(zip(header, fields, strict=True))
        yield line, row["post_id"], row["text"]


def checked(path: Path, rows) -> Iterator[tuple[str, str]]:
    """Each row's id and text, or the first bad row as a UserError naming its line."""
    first_line = {}
    for line, post_id, text in rows:
        if isinstance(post_id, int) and not isinstance(post_id, bool):
            post_id = str(post_id)
        if not isinstance(post_id, str) or not post_id.strip():
            raise UserError(f"{path} (line {line}): empty or missing post_id; give every post "
                            "an id (a non-empty string)")
        if post_id in first_line:
            raise UserError(f"{path} (line {line}): duplicate post_id {post_id!r} (first on "
                            f"line {first_line[post_id]}); keep one row per post")
        if not isinstance(text, str) or not text.strip():
            what = "no text" if text is None else "empty text" if isinstance(text, str) \
                else f"text of type {type(text).__name__}"
            raise UserError(f"{path} (line {line}): post {post_id!r} has {what}; give it its "
                            "text as a string, or remove the row")
        first_line[post_id] = line
        yield post_id, text
