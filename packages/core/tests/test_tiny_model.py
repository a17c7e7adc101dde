"""The offline tiny-deberta-v3 backbone: tokenizer training and caching, v3 wiring, loading."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, DebertaV2Model, DebertaV2Tokenizer

from cm.config.schema import TinyBackbone
from cm.errors import UserError
from cm.model import backbone, tiny
from cm.model.backbone import load_backbone, load_tokenizer
from cm.model.tiny import cached_tokenizer, tiny_deberta, train_tokenizer

# Invented posts in the style of the corpus (no real user text).
CORPUS = [
    "I can't sleep at night anymore, I just lie awake until four.",
    "Nothing makes me happy now, not even the games I used to love.",
    "I have been feeling sad and empty for weeks.",
    "My appetite is gone and I lost a lot of weight this month.",
    "I feel tired all day even after sleeping ten hours.",
    "I feel worthless and guilty about everything I do.",
    "I can't focus at work, I read the same line over and over.",
    "Sometimes I think everyone would be better off without me.",
    "I stopped going out with my friends because it feels pointless.",
    "Every morning I wake up exhausted and dread the day.",
    "I keep crying for no reason and I do not know why.",
    "My thoughts are slow and I cannot make simple decisions.",
    "I eat way more than usual, mostly junk food at night.",
    "People say I move and talk slower than before.",
    "I feel restless and can't sit still for long.",
    "I used to paint every weekend but I have no interest now.",
    "Everything feels heavy and grey, like a fog that never lifts.",
    "I blame myself for the breakup even though it was mutual.",
    "Getting out of bed takes all the energy I have.",
    "I sleep through my alarms and miss classes.",
    "I haven't enjoyed music in months.",
    "My mind goes blank when someone asks me a question.",
    "I think about death more often than I should.",
    "I feel like a failure compared to my siblings.",
    "I barely eat one meal a day and I am never hungry.",
    "Small chores like washing dishes feel impossible.",
    "I wake up at three in the morning and can't fall asleep again.",
    "I isolate myself in my room all weekend.",
    "Work used to excite me but now it is just noise.",
    "I feel numb, not even sad, just nothing at all.",
    "I forget appointments and lose track of conversations.",
    "My therapist asked about hopelessness and I said yes.",
    "I gained twenty pounds since winter started.",
    "I snap at my family and then feel terrible about it.",
    "Is it normal to feel this drained after a short walk?",
    "I have trouble concentrating on books or movies.",
    "Some days I just stare at the wall for hours.",
    "I don't see the point in making plans for the future.",
    "I apologize constantly because I feel like a burden.",
    "My sleep schedule is a mess, I nap all afternoon.",
    "I stopped answering messages from people who care about me.",
    "Even my favourite food tastes like cardboard now.",
    "I feel guilty for being depressed when my life looks fine.",
    "My body feels heavy and slow, like walking through water.",
    "I can't remember the last time I laughed for real.",
    "I wrote a goodbye note once but I never sent it.",
    "Concentrating at school is harder every semester.",
    "I pace around the apartment because I can't relax.",
    "Depressed mood most of the day, nearly every day.",
    "Markedly diminished interest or pleasure in all, or almost all, activities.",
]
VOCAB = 300


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-tokenizer")


@pytest.fixture(scope="module")
def tok(tok_dir):
    return train_tokenizer(CORPUS, tok_dir, vocab_size=VOCAB)


@pytest.fixture(scope="module")
def model(tok):
    return tiny_deberta(tok, TinyBackbone(), seed=0)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- tokenizer -------------------------------------------------------------------------


def test_in_vocabulary_text_has_no_unk_and_is_segmented(tok):
    for text in CORPUS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids, text
        # Real segmentation: fewer pieces than characters, and it decodes back.
        assert len(ids) < len(text)
        assert tok.decode(ids) == text
    # A new sentence made of corpus words is in-vocabulary too.
    ids = tok("I can't sleep and I feel worthless", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids


def test_words_the_corpus_repeats_are_single_pieces(tok):
    # the unigram trainer split "and" into "▁" + "and": 1.8 pieces per word on the demo posts
    words = "I can't sleep and I feel".split()
    pieces = tok.tokenize(" ".join(words))
    assert pieces == ["▁" + word for word in words]


def test_unseen_characters_are_unk(tok):
    ids = tok("日本", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id in ids


def test_special_tokens_follow_deberta_v3_ids(tok):
    assert isinstance(tok, DebertaV2Tokenizer)
    got = (tok.pad_token_id, tok.cls_token_id, tok.sep_token_id, tok.unk_token_id)
    assert got == (0, 1, 2, 3)
    assert tok.convert_tokens_to_ids("[MASK]") == tok.mask_token_id
    assert tok.mask_token_id not in (None, tok.unk_token_id)
    assert VOCAB // 2 < len(tok) <= VOCAB


def test_pair_template_is_cls_a_sep_b_sep(tok):
    a = tok("I feel sad", add_special_tokens=False)["input_ids"]
    b = tok("I can't sleep", add_special_tokens=False)["input_ids"]
    enc = tok("I feel sad", "I can't sleep")
    assert enc["input_ids"] == [1, *a, 2, *b, 2]
    assert enc["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)


def test_from_pretrained_round_trip(tok, tok_dir):
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(tok_dir))
    again = AutoTokenizer.from_pretrained(str(tok_dir))
    assert type(again) is type(tok)
    assert again.get_vocab() == tok.get_vocab()
    for text in CORPUS[:10]:
        assert again(text, CORPUS[-1])["input_ids"] == tok(text, CORPUS[-1])["input_ids"]


def test_vocab_shrinks_to_what_a_small_corpus_supports(tmp_path):
    small = CORPUS[:5]
    t = train_tokenizer(small, tmp_path, vocab_size=8000)
    assert len(t) < 8000
    for text in small:
        assert t.unk_token_id not in t(text)["input_ids"]


def test_vocab_grows_to_hold_every_character(tmp_path):
    t = train_tokenizer(CORPUS, tmp_path, vocab_size=16)
    alphabet = {c for text in CORPUS for c in text if c != " "}
    assert len(t) > len(alphabet)
    assert t.unk_token_id not in t(CORPUS[0])["input_ids"]


def test_long_texts_are_not_dropped_from_training(tmp_path):
    # a lone long post (sentencepiece's trainer skipped those over 4192 bytes) must count
    long_post = " ".join(CORPUS * 3)
    assert len(long_post.encode()) > 4192
    t = train_tokenizer([long_post], tmp_path, vocab_size=200)
    assert t.unk_token_id not in t(CORPUS[3])["input_ids"]


def test_empty_corpus_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="empty corpus"):
        train_tokenizer(["", "   "], tmp_path)


# --- tokenizer cache --------------------------------------------------------------------


def test_cache_hit_reuses_the_entry_without_retraining(tmp_path, monkeypatch):
    first = cached_tokenizer(CORPUS, tmp_path, VOCAB)
    (entry,) = tmp_path.iterdir()
    stamp = (entry / "tokenizer.json").stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("retrained on a cache hit")

    monkeypatch.setattr(tiny, "train_tokenizer", boom)
    second = cached_tokenizer(iter(CORPUS), tmp_path, VOCAB)  # any iterable
    assert second(CORPUS[0])["input_ids"] == first(CORPUS[0])["input_ids"]
    assert second.get_vocab() == first.get_vocab()
    assert (entry / "tokenizer.json").stat().st_mtime_ns == stamp
    assert list(tmp_path.iterdir()) == [entry]  # no temp folders left behind


def test_cache_key_depends_on_texts_and_vocab_size(tmp_path):
    cached_tokenizer(CORPUS, tmp_path, VOCAB)
    cached_tokenizer(CORPUS, tmp_path, VOCAB - 50)
    cached_tokenizer(CORPUS[:-1], tmp_path, VOCAB)
    assert len(list(tmp_path.iterdir())) == 3


def test_cache_survives_losing_a_race(tmp_path, monkeypatch):
    """Another process finishing the same entry first must not be an error."""
    real = tiny.train_tokenizer

    def rival_finishes_first(texts, out_dir, vocab_size):
        result = real(texts, out_dir, vocab_size)
        monkeypatch.setattr(tiny, "train_tokenizer", real)
        cached_tokenizer(texts, tmp_path, vocab_size)  # the rival's complete entry
        return result

    monkeypatch.setattr(tiny, "train_tokenizer", rival_finishes_first)
    t = cached_tokenizer(CORPUS, tmp_path, VOCAB)
    (entry,) = tmp_path.iterdir()
    assert not entry.name.startswith(".tmp")
    assert t.unk_token_id not in t(CORPUS[0])["input_ids"]


# --- tiny model -------------------------------------------------------------------------


def test_config_is_deberta_v3_shaped(model, tok):
    c = model.config
    assert c.model_type == "deberta-v2"
    assert c.relative_attention is True
    assert list(c.pos_att_type) == ["p2c", "c2p"]
    assert c.position_biased_input is False
    assert c.position_buckets == 256
    assert c.max_relative_positions == -1
    assert c.norm_rel_ebd == "layer_norm"
    assert c.share_att_key is True
    assert c.type_vocab_size == 0
    assert c.vocab_size == len(tok)
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (128, 2, 4)
    assert c.intermediate_size == 256
    assert c.hidden_dropout_prob == c.attention_probs_dropout_prob == 0.1


def test_modules_are_deberta_v3_shaped(model):
    emb = model.embeddings
    assert emb.position_embeddings is None  # no absolute positions
    assert emb.token_type_embeddings is None
    assert emb.word_embeddings.weight.shape == (model.config.vocab_size, 128)
    assert model.encoder.rel_embeddings.num_embeddings == 2 * 256  # bucketed
    assert model.encoder.LayerNorm is not None  # norm_rel_ebd="layer_norm"
    assert len(model.encoder.layer) == 2
    attention = model.encoder.layer[0].attention.self
    assert not hasattr(attention, "pos_key_proj")  # share_att_key: no separate projections
    assert not any("pooler" in name for name, _ in model.named_parameters())


def test_forward_gives_batch_tokens_hidden(model, tok):
    batch = tok(CORPUS[:3], [CORPUS[-1]] * 3, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (3, batch["input_ids"].shape[1], 128)
    assert torch.isfinite(out.last_hidden_state).all()


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone(tok):
    cfg = TinyBackbone(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = tiny_deberta(tok, cfg, seed=7)
    assert torch.equal(torch.rand(3), expected)
    assert same_weights(a, tiny_deberta(tok, cfg, seed=7))
    assert not same_weights(a, tiny_deberta(tok, cfg, seed=8))


def test_tiny_section_rejects_heads_that_do_not_divide_hidden():
    assert list(TinyBackbone(hidden_size=30, num_heads=4).check()) == [
        ("num_heads", "must divide hidden_size (30)")]


# --- load_backbone ----------------------------------------------------------------------


def test_load_backbone_tiny_uses_cached_tokenizer(tmp_path):
    cfg = TinyBackbone(
        hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, vocab_size=VOCAB
    )
    m1, t1 = load_backbone("tiny-deberta-v3", texts=CORPUS, tiny=cfg, cache_root=tmp_path, seed=3)
    m2, t2 = load_backbone("tiny-deberta-v3", texts=CORPUS, tiny=cfg, cache_root=tmp_path, seed=3)
    assert isinstance(m1, DebertaV2Model)
    assert m1.config.vocab_size == len(t1) and m1.config.hidden_size == 32
    assert same_weights(m1, m2)
    assert t1.get_vocab() == t2.get_vocab()
    assert len(list((tmp_path / "tokenizers").iterdir())) == 1


def test_load_tokenizer_matches_load_backbone_without_a_model(tmp_path):
    cfg = TinyBackbone(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    _, from_backbone = load_backbone("tiny-deberta-v3", texts=CORPUS, tiny=cfg, cache_root=tmp_path)
    alone = load_tokenizer("tiny-deberta-v3", texts=CORPUS, tiny=cfg, cache_root=tmp_path)
    assert alone.get_vocab() == from_backbone.get_vocab()


def test_load_backbone_tiny_needs_texts(tmp_path):
    with pytest.raises(ValueError, match="texts"):
        load_backbone("tiny-deberta-v3", cache_root=tmp_path)


def test_load_backbone_from_local_directory(tmp_path, tok, model):
    saved = tmp_path / "checkpoint"
    model.save_pretrained(saved)
    tok.save_pretrained(saved)
    loaded, loaded_tok = load_backbone(str(saved), cache_root=tmp_path)
    assert isinstance(loaded, DebertaV2Model)
    assert same_weights(loaded, model)
    assert loaded_tok(CORPUS[0])["input_ids"] == tok(CORPUS[0])["input_ids"]


def test_load_backbone_bad_local_paths(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        load_backbone(str(tmp_path / "missing" / "model"), cache_root=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="does not hold a loadable model"):
        load_backbone(str(tmp_path / "empty"), cache_root=tmp_path)


def test_hub_unreachable_offline_env_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_probe(*args, **kwargs):
        raise AssertionError("probed the network although HF_HUB_OFFLINE is set")

    monkeypatch.setattr(backbone, "hub_reachable", no_probe)
    start = time.monotonic()
    with pytest.raises(UserError) as caught:
        load_backbone("cm-tests-org/no-such-model", cache_root=tmp_path)
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert "'cm-tests-org/no-such-model'" in message
    assert "could not be reached" in message
    assert 'model.backbone = "/path/to/dir"' in message
    assert 'model.backbone = "tiny-deberta-v3"' in message
    assert "Original error: " in message
    assert "\n" not in message  # only the first line of the original error


def test_hub_unreachable_without_env_uses_the_probe(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    probes = []
    monkeypatch.setattr(backbone, "hub_reachable", lambda *a, **k: probes.append(1) and False)
    start = time.monotonic()
    with pytest.raises(UserError, match="could not be reached"):
        load_backbone("cm-tests-org/no-such-model", cache_root=tmp_path)
    with pytest.raises(UserError, match="could not be reached"):
        load_tokenizer("cm-tests-org/no-such-model", cache_root=tmp_path)
    assert time.monotonic() - start < 10
    assert len(probes) == 2

    class CachedTokenizerOnly:  # the tokenizer loads, the weights do not
        @staticmethod
        def from_pretrained(name, **kwargs):
            assert kwargs == {"local_files_only": True}
            return "tokenizer"

    monkeypatch.setattr(backbone, "AutoTokenizer", CachedTokenizerOnly)
    with pytest.raises(UserError, match="could not be reached"):
        load_backbone("cm-tests-org/no-such-model", cache_root=tmp_path)
    assert len(probes) == 3  # one probe per load_backbone, not one per file
    assert time.monotonic() - start < 10  # no retries against the unreachable hub


def test_hub_probe_times_out_quickly(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused/closed
    start = time.monotonic()
    assert backbone.hub_reachable(timeout=1.0) is False
    assert time.monotonic() - start < 3


def test_training_is_deterministic_across_processes(tmp_path):
    """The cache key is the texts' digest, so the same texts must give the same tokenizer
    in any process (the merge trainer's hash maps are seeded per process)."""
    import subprocess
    import sys

    script = ("import sys; from pathlib import Path; from cm.model.tiny import train_tokenizer; "
              "from tests_corpus import CORPUS; train_tokenizer(CORPUS, Path(sys.argv[1]), 300)")
    (tmp_path / "tests_corpus.py").write_text(f"CORPUS = {CORPUS!r}\n")
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True,
                       cwd=tmp_path, capture_output=True)
    first, second = ((tmp_path / name / "tokenizer.json").read_bytes() for name in ("a", "b"))
    assert first == second
