"""``cm predict`` on a file of any size: the file is checked whole first
(``cm.posts_file.count_posts``: a bad row anywhere is refused before any output), then read
again in groups of posts, each scored and written before the next is read. Memory holds one
group (``GROUP_CHARS`` characters of post text at most, or one post longer than that), its
encodings and its rows, and the ids seen; never the whole file. Within a group, pairs are
batched by length (``eval_loader``), so the padding a batch carries is small. Progress is
shown as ``cm run`` shows it, on standard error."""

import time
from collections.abc import Iterable, Iterator

import attrs

from cm.posts_file import iter_posts
from cm.predict import Predictor
from cm.predict.output import row_writer
from cm.progress import Progress

# post characters per group: at 4 characters a token and nine criteria, ~0.6 M tokens of
# pairs; enough pairs for length-sorted batches to pad little, few enough that a group's
# encodings and rows stay tens of MB
GROUP_CHARS = 250_000


@attrs.frozen
class Scored:
    posts: int
    rows: int
    seconds: float

    @property
    def posts_per_s(self) -> float:
        return self.posts / max(self.seconds, 1e-9)


def predict_file(predictor: Predictor, posts_file, total, out, fmt, console,
                 group_chars=GROUP_CHARS) -> Scored:
    """Every post of ``posts_file`` (``total`` of them: ``cm.posts_file.count_posts``, which
    checked every row) scored by ``predictor`` and written to ``out`` (None: standard output)
    as ``fmt``; ``console`` shows the progress."""
    started, done, rows = time.monotonic(), 0, 0
    with row_writer(out, fmt, predictor.columns()) as write, Progress(console) as progress:
        task = progress.add_task("predict", total, unit="posts")
        for posts in groups(iter_posts(posts_file), group_chars):
            scored = predictor.rows(posts)
            write(scored)
            done, rows = done + len(posts), rows + len(scored)
            progress.advance(task, by=len(posts),
                             posts_per_s=done / max(time.monotonic() - started, 1e-9))
    return Scored(total, rows, time.monotonic() - started)


def groups(posts: Iterable[tuple[str, str]], chars: int) -> Iterator[list[tuple[str, str]]]:
    """``posts`` in consecutive groups of at most ``chars`` characters of text (a longer
    post is a group of its own), in order."""
    group, size = [], 0
    for post in posts:
        if group and size + len(post[1]) > chars:
            yield group
            group, size = [], 0
        group.append(post)
        size += len(post[1])
    if group:
        yield group
