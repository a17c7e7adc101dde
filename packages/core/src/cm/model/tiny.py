"""The offline ``tiny-deberta-v3`` backbone: a local sentencepiece tokenizer plus a small,
randomly initialised DebertaV2Model wired exactly like DeBERTaV3.

Why: tests, CI and air-gapped runs need the real architecture (relative attention with
position buckets, no absolute positions) and the real tokenizer class, but cannot download
``microsoft/deberta-v3-*``. Only the sizes differ, so code paths exercised here are the
ones a pretrained run uses.

Tokenizer pitfall this module avoids: ``DebertaV2Tokenizer(vocab_file=...)`` ignores the
sentencepiece model in transformers 5 and builds a specials-only vocabulary (every word
becomes [UNK]). ``from_pretrained(dir)`` converts ``spm.model`` properly, so we always
go through a directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

from cm.config.schema import TinyBackbone
from cm.data.encode import texts_digest

log = logging.getLogger(__name__)

TINY_NAME = "tiny-deberta-v3"
# Bump when the tokenizer recipe changes so stale cache entries are not reused.
FORMAT_VERSION = 1
# DeBERTa-v3 ids: [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3 (the v3 spm.model layout); [MASK] is
# an extra piece (v3 appends it at 128000; here it lands right after the meta pieces).
PAD, CLS, SEP, UNK, MASK = "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"
MAX_POSITIONS = 512
META_FILE = "cm-tokenizer.json"
_TOO_HIGH = re.compile(r"too high.*?<= ?(\d+)")
_TOO_LOW = re.compile(r"smaller than required_chars\. ?\d+ vs (\d+)")


def normalize(text: str) -> str:
    """Mirror DebertaV2Tokenizer's normalizer (whitespace runs -> one space, NFC, rstrip), so
    the sentencepiece trainer sees the same characters the HF tokenizer will feed it."""
    text = re.sub(r"\s{2,}|[\n\r\t]", " ", text)
    return unicodedata.normalize("NFC", text).rstrip()


def train_tokenizer(texts: Iterable[str], out_dir: Path, vocab_size: int = 8000):
    """Train a DeBERTa-v3-style sentencepiece unigram tokenizer on texts into out_dir.

    Pass every text the model will see (posts and criterion wordings): characters never seen
    in training become [UNK]. vocab_size is a target: a small corpus cannot support a large
    unigram vocabulary, so it is shrunk to what the corpus allows; it is raised when it
    cannot hold every distinct character. len(returned tokenizer) is the size actually used.
    The folder loads with ``AutoTokenizer.from_pretrained(out_dir)``.
    """
    corpus = [t for t in (normalize(x) for x in texts) if t.strip()]
    if not corpus:
        raise ValueError("cannot train a tokenizer on an empty corpus")
    model_bytes, used = _train_spm(corpus, vocab_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "spm.model").write_bytes(model_bytes)
    converted = DebertaV2Tokenizer.from_pretrained(str(out_dir), model_max_length=MAX_POSITIONS)
    converted.save_pretrained(str(out_dir))  # tokenizer.json + tokenizer_config.json
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    meta = {
        "format_version": FORMAT_VERSION,
        "requested_vocab_size": vocab_size,
        "trainer_vocab_size": used,
        "vocab_size": len(tokenizer),
        "texts": len(corpus),
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return tokenizer


def _train_spm(corpus: list[str], vocab_size: int) -> tuple[bytes, int]:
    """Run the trainer, adjusting vocab_size from sentencepiece's own limit messages (too
    small for the alphabet; too high for the corpus, should the soft limit ever refuse)."""
    size = vocab_size
    tried = set()
    while size not in tried:
        tried.add(size)
        try:
            return _run_trainer(corpus, size), size
        except RuntimeError as err:
            message = str(err)
            found = _TOO_HIGH.search(message) or _TOO_LOW.search(message)
            if found is None:
                raise
            new_size = int(found.group(1))
            log.info("tokenizer vocab_size %d -> %d to fit the corpus", size, new_size)
            size = new_size
    raise ValueError(f"no vocabulary size fits this corpus (tried {sorted(tried)})")


def _run_trainer(corpus: list[str], vocab_size: int) -> bytes:
    longest = max(len(t.encode("utf-8")) for t in corpus)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=out,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a target: a small corpus yields fewer pieces, not an error
        character_coverage=1.0,  # every character seen in training stays in-vocabulary
        normalization_rule_name="identity",  # normalize() already did what HF will do
        max_sentence_length=max(4192, longest + 1),  # default silently drops long posts
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_piece=PAD,
        bos_piece=CLS,
        eos_piece=SEP,
        unk_piece=UNK,
        user_defined_symbols=[MASK],
        num_threads=1,  # single thread: same corpus -> same model, so cache keys stay honest
        minloglevel=2,
    )
    return out.getvalue()


def cached_tokenizer(texts: Iterable[str], cache_root: Path, vocab_size: int = 8000):
    """train_tokenizer, memoised on disk by (texts, vocab_size, FORMAT_VERSION).

    Entries are built in a temporary folder and renamed into place, so a reader never sees a
    half-written tokenizer and concurrent builders simply keep whichever rename won.
    """
    texts = list(texts)
    key = hashlib.sha256(
        f"{FORMAT_VERSION}:{vocab_size}:{texts_digest(texts)}".encode()
    ).hexdigest()
    cache_root = Path(cache_root)
    final = cache_root / f"tokenizer-{key[:24]}"
    if final.is_dir():
        log.debug("tokenizer cache hit: %s", final)
        return AutoTokenizer.from_pretrained(str(final))
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-tokenizer-", dir=cache_root))
    try:
        train_tokenizer(texts, tmp, vocab_size)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return AutoTokenizer.from_pretrained(str(final))


def tiny_config(tokenizer, config: TinyBackbone) -> DebertaV2Config:
    """The DebertaV2Config of microsoft/deberta-v3-base, with tiny sizes."""
    return DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=0,  # v3 has no segment embeddings: token_type_ids are ignored
        initializer_range=0.02,
        layer_norm_eps=1e-7,
        relative_attention=True,
        max_relative_positions=config.max_relative_positions,
        position_buckets=config.position_buckets,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,  # no absolute position embeddings
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pad_token_id=tokenizer.pad_token_id,
        pooler_hidden_size=config.hidden_size,
        pooler_dropout=0.0,
        pooler_hidden_act="gelu",
    )


def tiny_deberta(tokenizer, config: TinyBackbone, seed: int = 0) -> DebertaV2Model:
    """A randomly initialised v3-shaped DebertaV2Model; the same seed gives the same weights.

    The global torch RNG is left untouched, so building a model does not shift the random
    stream of whatever runs next (data shuffling, dropout).
    """
    model_config = tiny_config(tokenizer, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DebertaV2Model(model_config)
