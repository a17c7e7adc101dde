"""Length profiles: bench pairs whose token lengths follow a real corpus's, not the demo's.

``bench.lengths = "redsm5"`` keeps each timed example's criterion and rebuilds its post
part to a length drawn from the profile (the post's own tokens repeated, so the ids stay
in the vocabulary), then cuts it at ``data.max_length`` as ``head`` truncation does. Costs
that depend on length (attention, padding, bucketing) then match the real data's.

The ReDSM5 quantiles are WordPiece counts measured on the real posts (docs/research.md):
posts p10 20, p25 50, p50 124, p75 292, p90 736, p99 4,428, max 8,539 tokens (mean 364).
Between two quantiles a length is interpolated in log space, which puts the mean at ~395
and the share of posts over 218 / 474 tokens (pairs over 256 / 512 with a ~35-token
criterion) at 33% / 17% (measured: 32% / 15.5%). Sentences: only their mean (~18 tokens)
was measured; the quantiles below are an assumed right-skewed shape with that mean.
"""

import math

import attrs
import numpy as np

from cm.data.encode import Encoded


@attrs.frozen
class Profile:
    """Token-length quantiles of one level's text, and a real epoch's size at that level."""

    quantiles: tuple[tuple[float, int], ...]  # (probability, tokens), from 0 to 1
    pairs_per_epoch: int  # train pairs of one real epoch (for the epoch-time estimate)
    eval_pairs: int  # val + test pairs, scored after every run (and val after every epoch)

    def draw(self, count: int, seed: int) -> np.ndarray:
        """``count`` lengths: uniform probabilities through the log-interpolated quantiles."""
        probabilities, tokens = zip(*self.quantiles, strict=True)
        uniform = np.random.default_rng(seed).random(count)
        logs = np.interp(uniform, probabilities, np.log(tokens))
        return np.maximum(1, np.rint(np.exp(logs))).astype(int)


# ReDSM5 as cm splits it (seed 42, 80/10/10 by post): 1,187 train and 149 + 148 val and
# test posts x 9 criteria; ~29,400 sentences x 9 criteria at sentence level (~80% of them
# in train: ~212,000; ~20% in val + test: ~53,000).
PROFILES = {
    "redsm5": {
        "post": Profile(((0.0, 3), (0.10, 20), (0.25, 50), (0.50, 124), (0.75, 292),
                         (0.90, 736), (0.99, 4428), (1.0, 8539)), pairs_per_epoch=1187 * 9,
                        eval_pairs=(149 + 148) * 9),
        "sentence": Profile(((0.0, 2), (0.10, 6), (0.25, 10), (0.50, 15), (0.75, 23),
                             (0.90, 33), (0.99, 70), (1.0, 150)), pairs_per_epoch=212_000,
                            eval_pairs=53_000),
    },
}


def profile(name: str, level: str) -> Profile:
    return PROFILES[name][level]


def reshape(encoded: list[Encoded], lengths, max_length: int) -> list[Encoded]:
    """Each example with its post part rebuilt to the matching length (cut to fit
    ``max_length``); the criterion part and the special tokens stay as they were."""
    return [_rebuilt(example, int(length), max_length)
            for example, length in zip(encoded, lengths, strict=True)]


def _rebuilt(example: Encoded, length: int, max_length: int) -> Encoded:
    ids, types = example.input_ids, example.token_type_ids
    head = types.index(1) if 1 in types else len(ids) - 1  # [CLS] criterion [SEP]
    post = ids[head:-1] or ids[1:head - 1]  # its own post tokens (the criterion's if none)
    budget = max(1, min(length, max_length - head - 1))
    tiled = (post * math.ceil(budget / len(post)))[:budget]
    return Encoded(input_ids=(*ids[:head], *tiled, ids[-1]),
                   token_type_ids=(0,) * head + (1,) * (budget + 1),
                   pair_index=example.pair_index, window=example.window)
