"""A checkpoint checked as a whole before anything is scored with it: every part present and
unchanged since the run wrote it, every number of ``meta.json`` in range, the criteria the same
in ``criteria``, ``thresholds`` and ``temperatures``, the weights the shapes the backbone config
and the experiment describe, and a tokenizer that knows the criteria's words. Each failure is a
``UserError`` naming the part (file, key) and the fix."""

import hashlib
import math
from pathlib import Path

from cm.errors import UserError
from cm.evaluate.calibrator import STEPS

PARTS = ("model.safetensors", "backbone", "tokenizer", "experiment.toml",
         "meta.json")
KEPT = (*STEPS, "temperature")  # "temperature": a calibrator read from older temperatures
RESTORE = "copy the checkpoint again or use the checkpoint/ folder of another finished `cm run`"


def damaged(directory: Path, part: str, problem: str, fix: str = RESTORE) -> UserError:
    return UserError(f"checkpoint {directory}: {part}: {problem}; {fix}")


def check_parts(directory: Path) -> None:
    """Every part of a checkpoint is there."""
    missing = [name for name in PARTS if not (directory / name).exists()]
    if missing:
        raise UserError(f"{directory} is not a cm checkpoint (missing: {', '.join(missing)}); "
                        "pass the checkpoint/ folder written by `cm run`")


def file_digests(directory: Path) -> dict[str, str]:
    """SHA-256 of every file of a checkpoint but meta.json, by path relative to it."""
    return {path.relative_to(directory).as_posix(): sha256(path)
            for path in sorted(directory.rglob("*"))
            if path.is_file() and path.name != "meta.json"}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_files(directory: Path, meta: dict) -> None:
    """The files meta.json lists (``files``: path -> SHA-256) are there, unchanged. A
    checkpoint written before cm recorded them has no ``files``; its parts are still checked
    one by one."""
    listed = meta.get("files", {})
    if not isinstance(listed, dict):
        raise damaged(directory, "meta.json", "files is not a table of path -> SHA-256")
    for name, digest in listed.items():
        path = directory / name
        if not path.is_file():
            raise damaged(directory, name, "missing (meta.json lists it)")
        if sha256(path) != digest:
            raise damaged(directory, name, "changed since the run saved it (its SHA-256 "
                          "differs from the one meta.json records)",
                          "restore the file the run wrote (copy the checkpoint again); to "
                          "change the model, change the experiment and train again")


def check_meta(directory: Path, meta: dict) -> None:
    """meta.json's numbers in range and its criteria consistent; all problems at once."""
    problems = [*_counts(meta), *_criteria(meta)]
    calibrated = "calibrator" in meta or "temperatures" in meta
    if "thresholds" in meta and not calibrated:
        problems.append("thresholds come with a calibrator (or, in older checkpoints, "
                        "temperatures): neither is there")
    criteria = meta.get("criteria")
    ids = [c["id"] for c in criteria if isinstance(c, dict) and _text(c.get("id"))] \
        if isinstance(criteria, list) else []
    problems += _calibrator(meta.get("calibrator", {}), ids) if "calibrator" in meta else []
    for key, valid, expected in (("thresholds", _probability, "a number in [0, 1]"),
                                 ("temperatures", _positive, "a finite number > 0")):
        if key in meta:
            problems += _per_criterion(meta[key], key, valid, expected, ids)
    if problems:
        raise damaged(directory, "meta.json", "; ".join(problems),
                      "use the meta.json the run wrote (copy the checkpoint again) or the "
                      "checkpoint/ folder of another finished `cm run`")


def _calibrator(found, ids) -> list[str]:
    """meta.json's ``calibrator`` (cm.evaluate.calibrator): the step kept, a finite shift,
    a finite slope and bias per criterion."""
    if not isinstance(found, dict):
        return ["calibrator is not a table of kept, shift, slopes, biases"]
    problems = []
    if found.get("kept") not in KEPT:
        problems.append(f"calibrator.kept = {found.get('kept')!r} is not one of {KEPT}")
    if not _number(found.get("shift")):
        problems.append(f"calibrator.shift = {found.get('shift')!r} is not a finite number")
    for key in ("slopes", "biases"):
        problems += _per_criterion(found.get(key), f"calibrator.{key}", _number,
                                   "a finite number", ids)
    return problems


def _counts(meta: dict) -> list[str]:
    problems = []
    for key, low in (("num_logits", 1), ("epoch", 0)):
        value = meta.get(key)
        if key in meta and (type(value) is not int or value < low):
            problems.append(f"{key} = {value!r} is not a whole number >= {low}")
    return problems


def _criteria(meta: dict) -> list[str]:
    if "criteria" not in meta:
        return []
    criteria = meta["criteria"]
    if not isinstance(criteria, list) or not criteria:
        return ["criteria is not a non-empty list of {id, text}"]
    problems, seen = [], set()
    for i, item in enumerate(criteria):
        if not (isinstance(item, dict) and _text(item.get("id")) and _text(item.get("text"))):
            problems.append(f"criteria[{i}] is not an {{id, text}} pair of non-empty strings")
        elif item["id"] in seen:
            problems.append(f"criteria[{i}]: criterion {item['id']} is listed twice")
        else:
            seen.add(item["id"])
    return problems


def _per_criterion(values, key, valid, expected, ids) -> list[str]:
    if not isinstance(values, dict):
        return [f"{key} is not a table of criterion -> number"]
    problems = [f"{key}.{cid} = {value!r} is not {expected}"
                for cid, value in values.items() if not valid(value)]
    if ids:
        missing = [cid for cid in ids if cid not in values]
        extra = [cid for cid in values if cid not in ids]
        if missing:
            problems.append(f"{key} has no value for {', '.join(missing)} (in criteria)")
        if extra:
            problems.append(f"{key} has {', '.join(extra)}, which criteria does not list")
    return problems


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _probability(value) -> bool:
    return _number(value) and 0 <= value <= 1


def _positive(value) -> bool:
    return _number(value) and value > 0


def check_weights(directory: Path, model, shapes: dict[str, list[int]]) -> None:
    """The weights in model.safetensors (name -> shape) are what the backbone config and the
    experiment build: a backbone mismatch blames backbone/config.json, the rest (pooling,
    head) experiment.toml."""
    expected = {name: list(value.shape) for name, value in model.state_dict().items()}
    differing = sorted(name for name in expected.keys() | shapes.keys()
                       if expected.get(name) != shapes.get(name))
    if not differing:
        return
    backbone = [name for name in differing if name.startswith("backbone.")]
    name = (backbone or differing)[0]
    part = "backbone/config.json" if backbone else "experiment.toml (model.pooling, model.head)"
    raise damaged(directory, part, f"does not match model.safetensors ({len(differing)} "
                  f"weight(s) differ, e.g. {name}: {shapes.get(name, 'absent')} in the weights, "
                  f"{expected.get(name, 'absent')} by this config)")


def check_tokenizer(directory: Path, tokenizer, config, criteria: list[str]) -> None:
    """The tokenizer fits the embeddings and knows the criteria's words: one without its
    vocabulary (e.g. no tokenizer.json) turns every word into [UNK] and every post into the
    same input."""
    if len(tokenizer) > config.vocab_size:
        raise damaged(directory, "tokenizer", f"{len(tokenizer)} tokens, more than the "
                      f"{config.vocab_size} rows of the backbone's embeddings")
    ids = [i for text in criteria
           for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    if ids and all(i == tokenizer.unk_token_id for i in ids):
        raise damaged(directory, "tokenizer", "incomplete: every word of the criteria becomes "
                      f"{tokenizer.unk_token} (its vocabulary, e.g. tokenizer.json, is missing)")
