"""The built-in datasets: ``redsm5`` (the real, gated data at a path you give) and ``demo``
(cm's own synthetic posts in the ReDSM5 format, shipped inside cm-core)."""

from pathlib import Path

import attrs

from cm.data.demo import DEMO_ROOT
from cm.data.redsm5 import load_redsm5, load_redsm5_root


@attrs.frozen
class Redsm5Options:
    """``root`` holds ``redsm5/redsm5_posts.csv``, ``redsm5/redsm5_annotations.csv`` and
    ``DSM5/MDD_Criteira.json``; any of the three can be pointed elsewhere. Relative paths
    are taken from the working directory."""

    root: str = "data/redsm5"
    posts: str | None = None
    annotations: str | None = None
    criteria: str | None = None


def redsm5(options: Redsm5Options):
    root = Path(options.root)
    if options.posts is options.annotations is options.criteria is None:
        return load_redsm5_root(root)
    return load_redsm5(
        Path(options.posts or root / "redsm5" / "redsm5_posts.csv"),
        Path(options.annotations or root / "redsm5" / "redsm5_annotations.csv"),
        Path(options.criteria or root / "DSM5" / "MDD_Criteira.json"),
    )


def demo(options):
    return load_redsm5_root(DEMO_ROOT)
