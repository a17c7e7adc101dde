"""Resolve ``model.backbone`` to a (model, tokenizer) pair.

Three forms: ``tiny-deberta-v3`` (offline, built here), a local directory (a saved
checkpoint), or a hub name. Hub loading must fail fast and say what to do when offline:
left alone, transformers retries an unreachable hub for ~25 s and then prints advice about
environment variables that does not mention our config keys.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub.errors import HFValidationError
from transformers import AutoModel, AutoTokenizer

from cm.config.schema import TinyBackbone
from cm.errors import UserError
from cm.model.tiny import TINY_NAME, cached_tokenizer, tiny_deberta

HUB_PROBE_TIMEOUT_S = 3.0
OFFLINE_HINT = (
    'offline use needs a local model directory (model.backbone = "/path/to/dir", a folder '
    'written by save_pretrained) or model.backbone = "tiny-deberta-v3"'
)
_LOAD_ERRORS = (OSError, ValueError, HFValidationError)


def load_backbone(
    name_or_dir: str,
    *,
    texts: Iterable[str] | None = None,
    tiny: TinyBackbone | None = None,
    cache_root: Path,
    seed: int = 0,
):
    """Return (model, tokenizer) for a backbone name, a local directory or the tiny model.

    texts are required for ``tiny-deberta-v3`` only (its tokenizer is trained on them and
    cached under cache_root); seed only matters there too, as other backbones are pretrained.
    tiny is the experiment's ``model.tiny`` section (defaults when None).
    """
    if name_or_dir == TINY_NAME:
        tokenizer = load_tokenizer(name_or_dir, texts=texts, tiny=tiny, cache_root=cache_root)
        return tiny_deberta(tokenizer, (tiny or TinyBackbone()), seed), tokenizer
    offline = _hub_offline_once()
    tokenizer = _load(name_or_dir, AutoTokenizer, offline)
    return _load(name_or_dir, AutoModel, offline), tokenizer


def load_tokenizer(
    name_or_dir: str,
    *,
    texts: Iterable[str] | None = None,
    tiny: TinyBackbone | None = None,
    cache_root: Path,
):
    """The tokenizer load_backbone would return, without building or loading weights."""
    if name_or_dir == TINY_NAME:
        if texts is None:
            raise ValueError(f"{TINY_NAME} needs texts to train its tokenizer on")
        vocab_size = (tiny or TinyBackbone()).vocab_size
        return cached_tokenizer(texts, Path(cache_root) / "tokenizers", vocab_size)
    return _load(name_or_dir, AutoTokenizer, _hub_offline_once())


def experiment_tokenizer(experiment, prepared):
    """The tokenizer of ``experiment``'s backbone, without its weights; the tiny model's
    learns from ``prepared`` (a ``cm.data.prepare.Prepared``): criteria and train posts."""
    from cm.cachedir import cache_root

    return load_tokenizer(experiment.model.backbone, texts=prepared.tokenizer_texts(),
                          tiny=experiment.model.tiny, cache_root=cache_root())


def _load(name_or_dir: str, auto, offline):
    """auto.from_pretrained on a local directory or a hub name, with actionable errors;
    offline() says whether the hub is out of reach (only asked for hub names)."""
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        try:
            return auto.from_pretrained(str(path))
        except _LOAD_ERRORS as err:
            raise UserError(
                f"model.backbone directory {path} does not hold a loadable model and "
                f"tokenizer (config.json, weights, tokenizer files): {_first_line(err)}"
            ) from err
    if _looks_like_path(name_or_dir):
        raise UserError(
            f"model.backbone {name_or_dir!r} looks like a path but no such directory exists"
        )
    offline = offline()
    hub = {"local_files_only": offline}
    if offline and auto is AutoModel:  # transformers does not pass local_files_only on to its
        hub["adapter_kwargs"] = {"local_files_only": True}  # PEFT probe: 23 s of retries
    try:
        return auto.from_pretrained(name_or_dir, **hub)
    except _LOAD_ERRORS as err:
        if offline:
            why = "the Hugging Face hub could not be reached and it is not in the local cache"
        else:
            why = "the Hugging Face hub did not provide it (check the name)"
        raise UserError(
            f"could not load backbone {name_or_dir!r}: {why}; {OFFLINE_HINT}. "
            f"Original error: {_first_line(err)}"
        ) from err


def _looks_like_path(name: str) -> bool:
    """Hub ids are 'name' or 'org/name'; anything else is meant as a folder."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _hub_offline_once():
    """A memo of "offline or unreachable", so one load probes the network at most once."""
    answer = []

    def offline() -> bool:
        if not answer:
            answer.append(hub_offline() or not hub_reachable())
        return answer[0]

    return offline


def hub_offline() -> bool:
    """True when the user asked Hugging Face libraries to stay offline."""
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(v.strip().upper() in {"1", "ON", "YES", "TRUE"} for v in flags)


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Can a TCP connection to the hub endpoint be opened within timeout seconds?

    Run in a thread because name resolution ignores socket timeouts and can hang.
    """
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    result = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
