"""The offline ``tiny-deberta-v3`` backbone: a locally trained DeBERTa-v3 tokenizer plus a small,
randomly initialised DebertaV2Model wired exactly like DeBERTaV3.

Why: tests, CI and air-gapped runs need the real architecture (relative attention with
position buckets, no absolute positions) and the real tokenizer class, but cannot download
``microsoft/deberta-v3-*``. Only the sizes differ, so code paths exercised here are the
ones a pretrained run uses.

Tokenizer pitfall this module avoids: ``DebertaV2Tokenizer(vocab_file=...)`` ignores a
sentencepiece model in transformers 5 and builds a specials-only vocabulary (every word
becomes [UNK]). The tokenizer is built from its scored pieces (``vocab=``) and always
reloaded from its directory, as a pretrained one is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

from cm.cachedir import build_once
from cm.config.schema import TinyBackbone
from cm.data.encode import texts_digest

log = logging.getLogger(__name__)

TINY_NAME = "tiny-deberta-v3"
# Bump when the tokenizer recipe changes so stale cache entries are not reused.
FORMAT_VERSION = 2
# DeBERTa-v3 ids: [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3 (the v3 spm.model layout); [MASK] is
# an extra piece (v3 appends it at 128000; here it lands right after the meta pieces).
PAD, CLS, SEP, UNK, MASK = "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"
SPECIALS = (PAD, CLS, SEP, UNK, MASK)
MAX_POSITIONS = 512
META_FILE = "cm-tokenizer.json"


def normalize(text: str) -> str:
    """Mirror DebertaV2Tokenizer's normalizer (whitespace runs -> one space, NFC, rstrip), so
    the piece trainer sees the same characters the HF tokenizer will feed it."""
    text = re.sub(r"\s{2,}|[\n\r\t]", " ", text)
    return unicodedata.normalize("NFC", text).rstrip()


def train_tokenizer(texts: Iterable[str], out_dir: Path, vocab_size: int = 8000):
    """Train a DeBERTa-v3-style tokenizer on texts into out_dir: a ``DebertaV2Tokenizer``
    (unigram model, v3's normalizer and metaspace pre-tokenizer, v3's special ids) whose
    pieces are chosen by byte-pair merges and scored by their log frequency.

    Why not sentencepiece's unigram trainer, as v3 itself was built: on a small templated
    corpus it keeps a few hundred pieces and splits common words ("▁", "and"; 1.8 pieces
    per word on the demo posts), where merges keep whole words (1.0 per word), so every
    pair is about half as long. Pass every text the model will see (posts and criterion
    wordings): characters never seen in training become [UNK]. vocab_size is a target: a
    small corpus supports fewer merges, so the vocabulary shrinks to what it allows; every
    character seen stays in it, so it also grows past a vocab_size too small for them.
    len(returned tokenizer) is the size actually used. The folder loads with
    ``AutoTokenizer.from_pretrained(out_dir)``.
    """
    corpus = [t for t in (normalize(x) for x in texts) if t.strip()]
    if not corpus:
        raise ValueError("cannot train a tokenizer on an empty corpus")
    pieces = _scored_pieces(corpus, vocab_size)
    tokenizer = DebertaV2Tokenizer(vocab=pieces, unk_id=SPECIALS.index(UNK),
                                   model_max_length=MAX_POSITIONS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))  # tokenizer.json + tokenizer_config.json
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    meta = {
        "format_version": FORMAT_VERSION,
        "requested_vocab_size": vocab_size,
        "vocab_size": len(tokenizer),
        "texts": len(corpus),
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return tokenizer


def _scored_pieces(corpus: list[str], vocab_size: int) -> list[tuple[str, float]]:
    """The specials at v3's ids, then the pieces of byte-pair merges learned on corpus (split
    as v3 splits words), each scored by the log of how often the merges use it."""
    merges = Tokenizer(models.BPE(unk_token=UNK))
    merges.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    merges.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), min_frequency=2,
        show_progress=False))
    counts = Counter(piece for text in corpus for piece in merges.encode(text).tokens)
    learned = [piece for piece in merges.get_vocab() if piece not in SPECIALS]
    total = sum(counts.values()) + len(learned)
    scored = sorted(((piece, math.log((counts[piece] + 1) / total)) for piece in learned),
                    key=lambda item: (-item[1], item[0]))
    return [(special, 0.0) for special in SPECIALS] + scored


def cached_tokenizer(texts: Iterable[str], cache_root: Path, vocab_size: int = 8000):
    """train_tokenizer, memoised on disk by (texts, vocab_size, FORMAT_VERSION), each entry
    built once (``cm.cachedir.build_once``: a reader never sees half a tokenizer)."""
    texts = list(texts)
    key = hashlib.sha256(
        f"{FORMAT_VERSION}:{vocab_size}:{texts_digest(texts)}".encode()
    ).hexdigest()
    final = Path(cache_root) / f"tokenizer-{key[:24]}"
    if final.is_dir():
        log.debug("tokenizer cache hit: %s", final)
    build_once(final, lambda folder: train_tokenizer(texts, folder, vocab_size))
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
