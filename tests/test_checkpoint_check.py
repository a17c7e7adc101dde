"""A checkpoint is checked as a whole before anything is scored (issue 20, point 2): each
attack on a real tiny checkpoint is exit 2 naming the part, and a property test damages
every field of meta.json and every file."""

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cm.cli.main import cli
from cm.errors import UserError
from cm.model.checkpoint import load_checkpoint


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def forget_files(meta):
    """A checkpoint saved before cm recorded its files' digests."""
    meta.pop("files")


def meta_edit(change, older=False):
    def edit(directory):
        edit_json(directory / "meta.json",
                  lambda meta: (change(meta), forget_files(meta) if older else None))
    return edit


def threshold(value):
    return meta_edit(lambda meta: meta["thresholds"].update({"A.3": value}))


def temperature(value):
    return meta_edit(lambda meta: meta["temperatures"].update({"A.3": value}))


def wider_backbone(older):
    def edit(directory):
        edit_json(directory / "backbone" / "config.json",
                  lambda config: config.update(hidden_size=64))
        if older:
            edit_json(directory / "meta.json", forget_files)
    return edit


def other_head(older):
    def edit(directory):
        path = directory / "experiment.toml"
        path.write_text(path.read_text().replace("hidden_dims = [\n    64,\n]",
                                                 "hidden_dims = [\n    8,\n]"))
        if older:
            edit_json(directory / "meta.json", forget_files)
    return edit


def no_tokenizer_json(older):
    def edit(directory):
        (directory / "tokenizer" / "tokenizer.json").unlink()
        if older:
            edit_json(directory / "meta.json", forget_files)
    return edit


def calibrator(change):
    """A current checkpoint's calibrator (instead of an older one's temperatures), changed."""
    def edit(meta):
        meta.pop("temperatures")
        meta["calibrator"] = {"kept": "platt", "shift": 0.5,
                              "slopes": {f"A.{i}": 1.0 for i in range(1, 10)},
                              "biases": {f"A.{i}": 0.0 for i in range(1, 10)}}
        change(meta["calibrator"])
    return meta_edit(edit)


def cut(meta):
    meta["criteria"] = meta["criteria"][:8]


ATTACKS = {
    "threshold -1": (threshold(-1), ["meta.json", "thresholds.A.3 = -1", "[0, 1]"]),
    "threshold 2": (threshold(2), ["thresholds.A.3 = 2"]),
    "threshold NaN": (threshold(math.nan), ["thresholds.A.3 = nan"]),
    "threshold abc": (threshold("abc"), ["thresholds.A.3 = 'abc'"]),
    "temperature 0": (temperature(0), ["temperatures.A.3 = 0", "> 0"]),
    "temperature -3": (temperature(-3), ["temperatures.A.3 = -3"]),
    "temperature inf": (temperature(math.inf), ["temperatures.A.3 = inf"]),
    "criteria cut to 8": (meta_edit(cut), ["thresholds has A.9, which criteria does not list",
                                           "temperatures has A.9"]),
    "extra A.10": (meta_edit(lambda m: m["criteria"].append({"id": "A.10", "text": "x"})),
                   ["thresholds has no value for A.10"]),
    "A.9 missing": (meta_edit(lambda m: m["thresholds"].pop("A.9")),
                    ["thresholds has no value for A.9 (in criteria)"]),
    "criterion twice": (meta_edit(lambda m: m["criteria"].append(m["criteria"][0])),
                        ["criteria[9]: criterion A.1 is listed twice"]),
    "no calibration": (meta_edit(lambda m: m.pop("temperatures")),
                       ["thresholds come with a calibrator", "neither is there"]),
    "calibrator slope NaN": (calibrator(lambda c: c["slopes"].update({"A.2": math.nan})),
                             ["calibrator.slopes.A.2 = nan"]),
    "calibrator bias abc": (calibrator(lambda c: c["biases"].update({"A.2": "abc"})),
                            ["calibrator.biases.A.2 = 'abc'"]),
    "calibrator without A.9": (calibrator(lambda c: c["biases"].pop("A.9")),
                               ["calibrator.biases has no value for A.9"]),
    "calibrator kept magic": (calibrator(lambda c: c.update(kept="magic")),
                              ["calibrator.kept = 'magic'"]),
    "calibrator shift inf": (calibrator(lambda c: c.update(shift=math.inf)),
                             ["calibrator.shift = inf"]),
    "num_logits 0": (meta_edit(lambda m: m.update(num_logits=0)), ["num_logits = 0"]),
    "other hidden_size": (wider_backbone(False), ["backbone/config.json: changed since"]),
    "other hidden_size, older checkpoint": (wider_backbone(True), [
        "backbone/config.json: does not match model.safetensors",
        "backbone.embeddings.LayerNorm.bias: [32] in the weights, [64] by this config"]),
    "edited experiment": (other_head(False), ["experiment.toml: changed since the run"]),
    "edited experiment, older checkpoint": (other_head(True), [
        "experiment.toml (model.pooling, model.head): does not match model.safetensors"]),
    "no tokenizer.json": (no_tokenizer_json(False), ["tokenizer/tokenizer.json: missing"]),
    "no tokenizer.json, older checkpoint": (no_tokenizer_json(True), [
        "tokenizer: incomplete: every word of the criteria becomes [UNK]"]),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attack_on_a_checkpoint_is_exit_2_naming_the_part(attack, checkpoint, tmp_path):
    edit, fragments = ATTACKS[attack]
    broken = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, broken)
    edit(broken)
    posts, out = tmp_path / "posts.csv", tmp_path / "out.csv"
    posts.write_text("post_id,text\np1,I cannot sleep\n")
    result = CliRunner().invoke(cli, ["predict", str(posts), "--model", str(broken),
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in [f"checkpoint {broken}", *fragments]:
        assert fragment in result.output, result.output
    assert not out.exists()


def test_an_intact_checkpoint_loads_with_its_files_recorded(checkpoint):
    loaded = load_checkpoint(checkpoint)
    assert set(loaded.meta["files"]) == {"model.safetensors", "backbone/config.json",
                                         "experiment.toml", "tokenizer/tokenizer.json",
                                         "tokenizer/tokenizer_config.json"}


BAD_NUMBERS = st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.000001),
                        st.just(math.nan), st.text(max_size=3), st.none(), st.booleans())
FIELDS = [f"{key}.A.{i}" for key in ("thresholds", "temperatures") for i in range(1, 10)] + \
         [f"criteria[{i}].{part}" for i in range(9) for part in ("id", "text")] + \
         ["num_logits", "epoch"]


def mutate_meta(meta: dict, field: str, value) -> str:
    """Put ``value`` in ``field``; returns what the error must name."""
    if field.startswith("criteria["):
        index, part = int(field[9]), field.split(".")[1]
        meta["criteria"][index][part] = value if not isinstance(value, str) else ""
        return f"criteria[{index}]"
    if field in ("num_logits", "epoch"):
        meta[field] = -1 if isinstance(value, float) else value
        return field
    key, cid = field.split(".", 1)
    if key == "temperatures" and isinstance(value, float) and value > 1:
        value = -value  # every temperature > 0 is valid: make it negative
    meta[key][cid] = value
    return field


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(FIELDS + ["file"]), value=BAD_NUMBERS, data=st.data())
def test_any_damaged_field_or_file_is_a_user_error_naming_it(checkpoint, target, value, data):
    with tempfile.TemporaryDirectory() as scratch:
        broken = Path(scratch) / "checkpoint"
        shutil.copytree(checkpoint, broken)
        if target == "file":
            files = sorted(json.loads((broken / "meta.json").read_text())["files"])
            name = data.draw(st.sampled_from(files))
            how = data.draw(st.sampled_from(["delete", "truncate", "flip a byte"]))
            damage_file(broken / name, how)
        else:
            meta = json.loads((broken / "meta.json").read_text())
            name = mutate_meta(meta, target, value)
            (broken / "meta.json").write_text(json.dumps(meta))
        with pytest.raises(UserError) as info:
            load_checkpoint(broken)
    assert name in str(info.value) and str(broken) in str(info.value)


def damage_file(path: Path, how: str) -> None:
    content = path.read_bytes()
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(content[: len(content) // 2])
    else:
        middle = len(content) // 2
        path.write_bytes(content[:middle] + bytes([content[middle] ^ 1]) + content[middle + 1:])


def test_a_checkpoint_with_a_calibrator_loads(checkpoint, tmp_path):
    current = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, current)
    calibrator(lambda found: None)(current)
    assert load_checkpoint(current).meta["calibrator"]["kept"] == "platt"
