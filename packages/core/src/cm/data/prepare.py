"""From a resolved experiment to what the engines consume: the corpus, its pairs, the split
of every post. Shared by ``cm data stats``, ``cm run`` and ``cm bench``."""


import attrs

from cm.data.pairs import build_pairs, label_matrix
from cm.data.records import Corpus, PairSample
from cm.data.splits import SPLITS, fold_posts, split_posts
from cm.errors import UserError


@attrs.frozen
class Prepared:
    corpus: Corpus
    pairs: tuple[PairSample, ...]
    split_of: dict[str, str] = attrs.field(hash=False)  # post_id -> train / val / test
    skipped: dict[str, int] = attrs.field(hash=False)  # reason -> rows left out by policy

    def split(self, name: str) -> list[PairSample]:
        return [p for p in self.pairs if self.split_of[p.post_id] == name]

    def posts_in(self, name: str) -> list[str]:
        return sorted(pid for pid, split in self.split_of.items() if split == name)

    def tokenizer_texts(self) -> list[str]:
        """Texts a locally trained tokenizer learns from: the criteria and the TRAIN posts
        only, so nothing about validation or test text leaks into the vocabulary."""
        train = set(self.posts_in("train"))
        return [c.text for c in self.corpus.criteria] + [
            p.text for p in self.corpus.posts if p.post_id in train]


def prepare(experiment, registry) -> Prepared:
    """Load the dataset (``registry``'s dataset plugin), build pairs at the configured level
    and split posts (seeded)."""
    corpus = registry.build(experiment.data.dataset)
    pairs, skipped = build_pairs(corpus, experiment.data.level)
    split_of = post_splits(experiment.data, corpus, experiment.seed)
    prepared = Prepared(corpus, tuple(pairs), split_of, {**corpus.skipped, **skipped})
    check_splits(prepared, experiment.data.split)
    return prepared


def post_splits(data, corpus: Corpus, seed: int) -> dict[str, str]:
    """Each post's split: ``data.split`` drawn with ``data.split_seed`` (else ``seed``); for
    one fold of a cross-validation (``data.fold``) its fold of the train+val posts is val and
    the other folds train, test as it is."""
    split_seed = seed if data.split_seed is None else data.split_seed
    positives = label_matrix(corpus)
    split_of = split_posts([p.post_id for p in corpus.posts], positives, data.split, split_seed)
    if data.fold is None:
        return split_of
    fold_of = fold_posts(split_of, positives, data.folds, split_seed)
    return {pid: "val" if fold_of.get(pid) == data.fold else
            "test" if split == "test" else "train" for pid, split in split_of.items()}


def check_splits(prepared: Prepared, ratios) -> None:
    """Training needs train pairs; early stopping, the threshold and the test scores need
    val and test pairs: a split left empty by ``data.split`` on this corpus is bad input."""
    sizes = {name: len(prepared.split(name)) for name in SPLITS}
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        posts = ", ".join(f"{name} {len(prepared.posts_in(name))}" for name in SPLITS)
        raise UserError(f"$.data.split {list(ratios)} leaves the {' and '.join(empty)} "
                        f"split{'s' if len(empty) > 1 else ''} without pairs on this dataset "
                        f"({len(prepared.corpus.posts)} posts: {posts}); give every split "
                        "a share that holds at least one post, e.g. [0.8, 0.1, 0.1]")


__all__ = ["SPLITS", "Prepared", "prepare"]
