"""Strict loader for the ReDSM5 CSV/JSON files.

A bad row would silently distort labels, so every problem is reported (file, CSV line, fix)
and the whole file is rejected at once. Post text is sensitive: messages name post ids and
line numbers, never the text itself.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

from cm.data.records import SYMPTOM_TO_CRITERION, Annotation, Corpus, Criterion, Post
from cm.errors import UserError
from cm.textfile import csv_records

POSTS_FILE = "redsm5_posts.csv"
ANNOTATIONS_FILE = "redsm5_annotations.csv"
CRITERIA_FILE = "MDD_Criteira.json"  # sic: the dataset's own spelling
LAYOUT = (
    f"<root>/redsm5/{POSTS_FILE}, <root>/redsm5/{ANNOTATIONS_FILE}, <root>/DSM5/{CRITERIA_FILE} "
    "(the criteria file name keeps the dataset's misspelling 'Criteira')"
)
POST_COLUMNS = ("post_id", "text")
ANNOTATION_COLUMNS = ("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status")
MAX_LISTED = 20
DUPLICATE_ROWS = "duplicate_annotation_rows"


class DataError(UserError):
    """A dataset file is missing or malformed; the message says where and how to fix it."""


def load_redsm5_root(root: Path) -> Corpus:
    """Load a dataset laid out as the public ReDSM5 release (see LAYOUT)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} is not a directory; expected layout: {LAYOUT}")
    return load_redsm5(
        root / "redsm5" / POSTS_FILE,
        root / "redsm5" / ANNOTATIONS_FILE,
        root / "DSM5" / CRITERIA_FILE,
    )


def load_redsm5(posts_csv: Path, annotations_csv: Path, criteria_json: Path) -> Corpus:
    """Load and validate the three files; raise DataError listing every problem found."""
    paths = [Path(posts_csv), Path(annotations_csv), Path(criteria_json)]
    raw = [_read_bytes(p) for p in paths]
    criteria = _parse_criteria(paths[2], raw[2])
    posts = _parse_posts(paths[0], raw[0])
    known = ({p.post_id for p in posts}, {c.id for c in criteria})
    annotations, duplicates = _parse_annotations(paths[1], raw[1], *known)
    digests = {p.name: hashlib.sha256(b).hexdigest() for p, b in zip(paths, raw, strict=True)}
    return Corpus(posts, annotations, criteria, digests, {DUPLICATE_ROWS: duplicates})


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        hint = ""
        if path.name == CRITERIA_FILE and path.with_name("MDD_Criteria.json").is_file():
            hint = f" (found MDD_Criteria.json next to it: rename it to {CRITERIA_FILE})"
        raise DataError(f"dataset file not found: {path}{hint}. Expected layout: {LAYOUT}")
    return path.read_bytes()


def _fail(path: Path, problems: list[str]) -> None:
    """Raise one DataError listing up to MAX_LISTED problems of a file."""
    if not problems:
        return
    listed = [f"  - {p}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        listed.append(f"  - and {len(problems) - MAX_LISTED} more")
    raise DataError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(listed))


def _is_blank(value: str | None) -> bool:
    """Empty, whitespace-only or a pandas-style NaN placeholder."""
    return value is None or value.strip().lower() in ("", "nan")


def _rows(path: Path, raw: bytes, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Parse a CSV into (first line number, row) pairs; structural problems fail the file."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 (byte {exc.start}); re-save it as UTF-8 CSV"
        ) from None
    records = csv_records(path, [text])
    _, header = next(records, (1, None))
    if not header:
        raise DataError(f"{path} is empty; expected a header row with columns {list(required)}")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{path} (line 1): missing column(s) {missing}; the header has {header}. "
            f"Rename the columns to {list(required)}."
        )
    rows, problems = [], []
    for line, fields in records:
        if len(fields) != len(header):
            problems.append(
                f"line {line}: {len(fields)} fields but the header has {len(header)}; "
                "quote fields containing commas or newlines"
            )
            continue
        rows.append((line, dict(zip(header, fields, strict=True))))
    _fail(path, problems)
    return rows


def _parse_posts(path: Path, raw: bytes) -> tuple[Post, ...]:
    posts, problems, seen = [], [], {}
    for line, row in _rows(path, raw, POST_COLUMNS):
        post_id = row["post_id"].strip()
        if _is_blank(post_id):
            problems.append(f"line {line}: empty post_id; give every post a unique id")
            continue
        if _is_blank(row["text"]):
            problems.append(
                f"line {line}: post {post_id!r} has empty/NaN text; fill it in or drop the row"
            )
        if post_id in seen:
            problems.append(
                f"line {line}: duplicate post_id {post_id!r} (first on line {seen[post_id]}); "
                "keep one row per post"
            )
            continue
        seen[post_id] = line
        posts.append(Post(post_id, row["text"]))
    _fail(path, problems)
    return tuple(posts)


def _parse_annotations(
    path: Path, raw: bytes, post_ids: set[str], criterion_ids: set[str]
) -> tuple[tuple[Annotation, ...], int]:
    """Validate annotation rows; identical repeated rows are dropped and counted (policy)."""
    annotations, problems, seen, duplicates = [], [], set(), 0
    for line, row in _rows(path, raw, ANNOTATION_COLUMNS):
        where = f"line {line}"
        post_id, sentence_id = row["post_id"].strip(), row["sentence_id"].strip()
        symptom, status = row["DSM5_symptom"].strip(), row["status"].strip()
        if post_id not in post_ids:
            problems.append(
                f"{where}: post_id {post_id!r} is not in the posts file; "
                "add the post or remove its annotations"
            )
        if _is_blank(sentence_id):
            problems.append(f"{where}: empty sentence_id; give every sentence an id")
        if _is_blank(row["sentence_text"]):
            problems.append(
                f"{where}: sentence {sentence_id!r} has empty/NaN sentence_text; fill it in"
            )
        if symptom not in SYMPTOM_TO_CRITERION:
            close = difflib.get_close_matches(symptom.upper(), list(SYMPTOM_TO_CRITERION), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{where}: unknown DSM5_symptom {symptom!r}{hint}; "
                f"use one of {sorted(SYMPTOM_TO_CRITERION)}"
            )
        elif SYMPTOM_TO_CRITERION[symptom] not in criterion_ids | {None}:
            problems.append(
                f"{where}: symptom {symptom} maps to criterion "
                f"{SYMPTOM_TO_CRITERION[symptom]}, which the criteria file lacks; add it there"
            )
        if status not in ("0", "1"):
            problems.append(f"{where}: status {status!r} is not 0 or 1; use 1 (met) or 0 (not)")
            continue
        text, explanation = row["sentence_text"], row.get("explanation", "")
        ann = Annotation(post_id, sentence_id, text, symptom, int(status), explanation)
        if ann in seen:
            duplicates += 1
            continue
        seen.add(ann)
        annotations.append(ann)
    _fail(path, problems)
    return tuple(annotations), duplicates


def _parse_criteria(path: Path, raw: bytes) -> tuple[Criterion, ...]:
    fix = 'expected {"diagnosis": ..., "criteria": [{"id": "A.1", "text": ...}, ...]}'
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 (byte {exc.start}); re-save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
            f"(char {exc.pos}); fix the syntax there"
        ) from None
    items = doc.get("criteria") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise DataError(f'{path}: missing or empty "criteria" list; {fix}')
    criteria, problems, seen = [], [], {}
    for i, item in enumerate(items):
        where = f"criteria[{i}]"
        cid = item.get("id") if isinstance(item, dict) else None
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(cid, str) or _is_blank(cid):
            problems.append(f'{where}: missing "id"; give each criterion an id like "A.1"')
            continue
        if not isinstance(text, str) or _is_blank(text):
            problems.append(f'{where} (id {cid!r}): missing "text"; add the criterion wording')
        if cid in seen:
            problems.append(
                f"{where}: duplicate id {cid!r} (first at criteria[{seen[cid]}]); ids must be "
                "unique"
            )
            continue
        seen[cid] = i
        criteria.append(Criterion(cid, text))
    _fail(path, problems)
    return tuple(criteria)
