"""``cm data stats`` counts what the model runs: with ``truncation = "windows"`` a long pair
is several inputs, and the padding figures are computed on those inputs."""

from cm.data.encode import encode_pairs
from cm.data.prepare import prepare
from cm.data.stats import data_stats
from cm.model.backbone import experiment_tokenizer
from cm.registry import get_registry


def stats(experiment):
    prepared = prepare(experiment, get_registry())
    tokenizer = experiment_tokenizer(experiment, prepared)
    return prepared, tokenizer, data_stats(experiment, prepared, tokenizer)


def test_windows_are_counted_as_the_inputs_the_model_runs(tiny_experiment):
    experiment = tiny_experiment("data.truncation=windows", "data.stride=16")
    prepared, tokenizer, report = stats(experiment)
    encoded = encode_pairs([(p.criterion_text, p.text) for p in prepared.pairs], tokenizer,
                           64, "windows", 16)
    inputs = report["model_inputs"]
    assert inputs["truncation"] == "windows"
    assert inputs["inputs"] == len(encoded) > len(prepared.pairs)
    cut = {e.pair_index for e in encoded if e.window > 0}
    assert inputs["pairs_in_windows"] == len(cut) > 0
    train = {i for i, p in enumerate(prepared.pairs) if prepared.split_of[p.post_id] == "train"}
    real = sum(len(e.input_ids) for e in encoded if e.pair_index in train)
    assert {row["real_tokens"] for row in report["padding"]} == {real}


def test_head_truncation_is_one_input_per_pair(tiny_experiment):
    prepared, _, report = stats(tiny_experiment("data.truncation=head"))
    assert report["model_inputs"] == {"truncation": "head", "inputs": len(prepared.pairs),
                                      "pairs_in_windows": 0}
    assert report["lengths"]["over_max_length"] > 0  # some pairs were cut, none in windows
