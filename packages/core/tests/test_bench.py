"""``cm bench`` at a tiny size (outputs and their consistency, never timings), the FLOPs
formula, and the validation of bench files."""

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from transformers import DebertaV2Config, DebertaV2Model

from cm.bench.config import load_bench
from cm.bench.flops import forward_flops, peak_flops, train_flops
from cm.cli.main import cli
from cm.config.decode import ConfigError
from cm.errors import UserError

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

DEMO = Path(__file__).resolve().parents[3] / "experiments" / "demo-posts.toml"
TINY = """
base = "{demo}"
[data]
max_length = 256
stride = 16
[model.tiny]
hidden_size = 32
num_heads = 2
num_layers = 1
intermediate_size = 64
[train]
batch_size = 8
device = "cpu"
[bench]
examples = 24
warmup = 1
output_dir = "{out}"
{configs}
"""
CONFIGS = """
[[bench.configs]]
name = "cm"
[[bench.configs]]
name = "bucketing"
set = { "optimizations.bucketing" = {} }
[[bench.configs]]
name = "packing"
set = { "optimizations.packing" = {} }
"""


def bench_file(tmp_path, configs=CONFIGS) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(TINY.format(demo=DEMO, out=tmp_path / "results", configs=configs))
    return path


def test_bench_writes_consistent_results(tmp_path):
    result = CliRunner().invoke(cli, ["bench", str(bench_file(tmp_path))])
    assert result.exit_code == 0, result.output
    [directory] = (tmp_path / "results").iterdir()
    assert directory.name.startswith("cpu-")
    report = json.loads((directory / "results.json").read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert list(rows) == ["reference", "cm", "bucketing", "packing"]
    assert report["device"]["type"] == "cpu" and report["versions"]["torch"]
    assert report["source"]["digest"] and report["source"]["known_by"] in {"git", "stamp", None}
    assert report["gpu"] is None
    # the same examples everywhere: same real tokens; only the padding differs
    assert {row["examples"] for row in rows.values()} == {24}
    assert len({row["real_tokens"] for row in rows.values()}) == 1
    for row in rows.values():
        assert row["computed_tokens"] >= row["real_tokens"]
        assert math.isfinite(row["ratio_vs_reference"]) and row["ratio_vs_reference"] > 0
        assert row["samples_per_s"] > 0 and row["train_flops"] > 0
        assert row["mfu"] is None  # CPU: no peak to compare with
        assert row["precision"] == "fp32"
    assert rows["reference"]["ratio_vs_reference"] == 1.0
    assert rows["reference"]["ratio_vs_reference_cpu_time"] == 1.0
    assert all(math.isfinite(row["ratio_vs_reference_cpu_time"]) for row in rows.values())
    assert rows["packing"]["padding_waste"] < rows["cm"]["padding_waste"]
    assert rows["bucketing"]["padding_waste"] < rows["cm"]["padding_waste"]
    assert rows["packing"]["steps"] <= rows["cm"]["steps"]
    assert all(row["spread"] == 0.0 and row["epoch_seconds"] is None for row in rows.values())
    assert rows["reference"]["eval_pairs_per_s"] is None  # scoring is timed for cm rows
    assert all(rows[name]["eval_pairs_per_s"] > 0 for name in ("cm", "bucketing", "packing"))
    table = (directory / "results.md").read_text()
    assert "**Indicative only** (fewer than 3 rounds or 100 timed steps): reference" in table
    assert "| config | precision | samples/s |" in table and "| packing | fp32 |" in table
    assert (directory / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_a_reference_runs_at_each_precision_used(tmp_path):
    configs = '[[bench.configs]]\nname = "bf16"\nset = { "optimizations.bf16" = {} }\n'
    result = CliRunner().invoke(cli, ["bench", str(bench_file(tmp_path, configs)),
                                      "--set", "bench.examples=8",
                                      "--set", "bench.rounds=2"])
    assert result.exit_code == 0, result.output
    [directory] = (tmp_path / "results").iterdir()
    rows = json.loads((directory / "results.json").read_text())["rows"]
    assert [(r["name"], r["precision"]) for r in rows] == [("reference-bf16", "bf16"),
                                                           ("bf16", "bf16")]
    assert all(len(r["samples_per_s_rounds"]) == 2 for r in rows)
    assert all(r["spread"] == pytest.approx(
        (max(r["samples_per_s_rounds"]) - min(r["samples_per_s_rounds"]))
        / (r["examples"] / r["seconds"]), rel=0.3) for r in rows)


def test_a_length_profile_gives_its_lengths_and_a_real_epoch_estimate(tmp_path):
    from cm.bench.lengths import profile

    result = CliRunner().invoke(cli, ["bench", str(bench_file(tmp_path, CONFIGS)),
                                      "--set", 'bench.lengths="redsm5"',
                                      "--set", "bench.examples=64",
                                      "--set", 'bench.only=["cm"]'])
    assert result.exit_code == 0, result.output
    [directory] = (tmp_path / "results").iterdir()
    rows = json.loads((directory / "results.json").read_text())["rows"]
    real = profile("redsm5", "post")
    for row in rows:
        assert row["epoch_seconds"] == pytest.approx(real.pairs_per_epoch / row["samples_per_s"])
    assert rows[1]["eval_seconds"] == pytest.approx(real.eval_pairs / rows[1]["eval_pairs_per_s"])
    # at max_length 256 a third of ReDSM5 pairs are cut: most real tokens are near the cap
    assert rows[0]["real_tokens"] / rows[0]["examples"] > 100
    table = (directory / "results.md").read_text()
    assert "'redsm5' profile" in table and "A 5-epoch run on the real data" in table
    assert "- cm: warm-up " in table


def test_an_interrupted_bench_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    from cm.bench.runner import Runner

    measure = Runner.measure_cm

    def stop_at_packing(self, config, progress):
        if config.name == "packing":
            raise RuntimeError("the machine went away")
        return measure(self, config, progress)

    monkeypatch.setattr(Runner, "measure_cm", stop_at_packing)
    result = CliRunner().invoke(cli, ["bench", str(bench_file(tmp_path))])
    assert result.exit_code != 0
    [directory] = (tmp_path / "results").iterdir()
    rows = json.loads((directory / "results.json").read_text())["rows"]
    # the reference comes right after the first row of its precision: ratios are known
    assert [r["name"] for r in rows] == ["reference", "cm", "bucketing"]
    assert all(r["ratio_vs_reference"] > 0 for r in rows)
    report = (directory / "results.md").read_text()
    assert "| bucketing | fp32 |" in report
    assert "**Partial** (interrupted, or still running): not measured: packing" in report


def problems(tmp_path, configs=CONFIGS, *overrides) -> str:
    with pytest.raises(UserError) as caught:
        load_bench(bench_file(tmp_path, configs), overrides)
    return str(caught.value)


def test_bench_table_errors_name_the_key(tmp_path):
    """[bench] goes through the experiment's decoder: the same messages, keys and passes
    (unknown keys and types first, then ranges)."""
    message = problems(tmp_path, CONFIGS, "bench.exampels=3", "bench.warmup=true")
    assert "$.bench.exampels: unknown key; did you mean 'examples'?" in message
    assert "$.bench.warmup: expected integer, got boolean True" in message
    message = problems(tmp_path, CONFIGS, "bench.rounds=0", "bench.threads=0")
    assert "$.bench.rounds: 'rounds' must be >= 1: 0" in message
    assert "$.bench.threads: 'threads' must be >= 1: 0" in message


def test_configuration_errors_name_the_configuration_and_key(tmp_path):
    configs = """
[[bench.configs]]
name = "packing"
set = { "optimizations.packng" = {} }
[[bench.configs]]
name = "packing"
[[bench.configs]]
name = "reference"
[[bench.configs]]
name = "bad key"
set = { "" = 1 }
"""
    message = problems(tmp_path, configs)
    assert "$.bench.configs[0] (packing): $.optimizations.packng.name: 'packng' is not a " \
           "registered optimization" in message
    assert "did you mean 'packing'?" in message
    assert "$.bench.configs[1].name: 'packing' is used twice" in message
    assert "$.bench.configs[2].name: 'reference': names starting with 'reference'" in message
    assert "$.bench.configs[3].name: 'name' must match regex" in message
    assert "$.bench.configs[3].set: '': not a dotted key" in message
    message = problems(tmp_path, '[[bench.configs]]\nname = "x"\nsett = {}\n')
    assert "$.bench.configs[0].sett: unknown key; did you mean 'set'?" in message


def test_a_file_without_a_bench_table_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"no \[bench\] table"):
        load_bench(DEMO)
    with pytest.raises(ConfigError, match=r"\$\.bench\.configs: required"):
        load_bench(bench_file(tmp_path, ""))


def test_cli_reports_bench_errors_with_exit_code_2(tmp_path):
    result = CliRunner().invoke(cli, ["bench", str(bench_file(tmp_path)),
                                      "--set", "bench.examples=0"])
    assert result.exit_code == 2
    assert "$.bench.examples: 'examples' must be >= 1: 0" in result.output


def tiny_config(**changes) -> DebertaV2Config:
    shape = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=24, relative_attention=True, position_buckets=8,
                 max_relative_positions=-1, pos_att_type=["p2c", "c2p"], share_att_key=True,
                 position_biased_input=False, norm_rel_ebd="layer_norm", type_vocab_size=0,
                 max_position_embeddings=64, hidden_dropout_prob=0.0,
                 attention_probs_dropout_prob=0.0)
    return DebertaV2Config(**{**shape, **changes})


def test_flops_match_a_hand_count():
    # H=16, I=24, 2 layers, 2k = 16 relative embeddings, one sequence of T=7, per layer:
    # relative projections (key and query maps): 2 * (2 * 16 * 16 * 16)     = 16384
    # projections + feed-forward: 2 * 7 * (4 * 16^2 + 2 * 16 * 24)         = 25088
    # Q K^T and A V: 2 * (2 * 7 * 7 * 16)                                  =  3136
    # c2p and p2c against the 16 relative embeddings: 2 * (2 * 7 * 16 * 16) = 7168
    per_layer = 16384 + 25088 + 3136 + 7168
    config = tiny_config()
    assert forward_flops(config, [7]) == 2 * per_layer
    assert train_flops(config, [7]) == 3 * 2 * per_layer
    # the relative projections are paid once per forward, not once per sequence
    assert forward_flops(config, [7, 7]) == 2 * (16384 + 2 * (25088 + 3136 + 7168))


@pytest.mark.parametrize("changes", [{}, {"share_att_key": False, "pos_att_type": ["c2p"]},
                                     {"relative_attention": False}])
def test_flops_equal_what_torch_counts_on_the_model(changes):
    from torch.utils.flop_counter import FlopCounterMode

    config = tiny_config(**changes)
    model = DebertaV2Model(config)
    ids = torch.randint(4, 50, (3, 9))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.sum(
            ).backward()
    assert counter.get_total_flops() == train_flops(config, [9, 9, 9])


def test_peak_flops_by_device_name():
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_flops("NVIDIA H200", "bf16") == 989e12
    assert peak_flops("NVIDIA A100-SXM4-80GB", "bf16") == 312e12
    assert peak_flops("NVIDIA GeForce RTX 3060", "bf16") is None


def test_only_keeps_the_named_configurations_in_file_order(tmp_path):
    bench = load_bench(bench_file(tmp_path), ['bench.only=["packing", "cm"]'])
    assert [config.name for config in bench.configs] == ["cm", "packing"]
    message = problems(tmp_path, CONFIGS, 'bench.only=["pakcing"]')
    assert "$.bench.only: 'pakcing' is not a configuration here; choose from " \
           "['cm', 'bucketing', 'packing']" in message


def test_a_warmup_pass_meets_every_shape_of_the_timed_pass_first(tmp_path, monkeypatch):
    import cm.bench.runner as runner

    shapes, epoch = {}, runner.train_epoch

    def recording(loop, loader, progress, label, on_step=None):
        seen = shapes.setdefault(label, [])
        batches = [batch for batch in loader]
        seen += [tuple(batch["input_ids"].shape) for batch in batches]
        return epoch(loop, batches, progress, label, on_step)

    monkeypatch.setattr(runner, "train_epoch", recording)
    configs = '[[bench.configs]]\nname = "bucketing"\nset = { "optimizations.bucketing" = {} }\n'
    result = CliRunner().invoke(cli, ["bench", str(bench_file(tmp_path, configs)),
                                      "--set", "bench.warmup_pass=true"])
    assert result.exit_code == 0, result.output
    assert len(shapes["bucketing"]) == 3  # 24 examples, batches of 8
    assert shapes["bucketing warmup"] == shapes["bucketing"]
    [directory] = (tmp_path / "results").iterdir()
    rows = json.loads((directory / "results.json").read_text())["rows"]
    assert all(row["warmup_seconds"] > 0 for row in rows)
    assert "warm-up: one untimed pass over the same examples" in (
        directory / "results.md").read_text()


GPU_FILES = sorted((DEMO.parents[1] / "benchmarks").glob("gpu*.toml"))
SHRUNK = ['train.device="cpu"', "model.tiny.hidden_size=32", "model.tiny.num_heads=2",
          "model.tiny.num_layers=1", "model.tiny.intermediate_size=64", "bench.rounds=1",
          "bench.examples=8", "bench.warmup_pass=false", "bench.warmup=0", "train.batch_size=4"]


@pytest.mark.parametrize("path", GPU_FILES, ids=[p.name for p in GPU_FILES])
def test_every_gpu_bench_file_runs_shrunk_on_cpu(path, tmp_path):
    """The GPU bench files as they are, but a tiny model on CPU and their first row only (a
    CPU-capable one): they decode, draw their length profile and write their results."""
    first = load_bench(path).configs[0].name
    sets = [*SHRUNK, f"bench.output_dir={json.dumps(str(tmp_path))}",
            f"bench.only={json.dumps([first])}"]
    result = CliRunner().invoke(cli, ["bench", str(path), *[a for s in sets
                                                            for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    [directory] = tmp_path.iterdir()
    report = json.loads((directory / "results.json").read_text())
    assert [row["name"] for row in report["rows"]] == ["reference-bf16", first]
    assert report["bench"]["lengths"] == "redsm5"
    assert all(row["epoch_seconds"] > 0 for row in report["rows"])
