"""``cm export``: a finished run's checkpoint as a folder other tools load.

- ``hf``: a plain ``transformers`` folder (``DebertaV2ForSequenceClassification``), for the
  heads and poolings it can express: pooling ``cls`` with head ``linear`` on a DeBERTa-v2/v3
  backbone. Anything else is refused, naming the component (use ``onnx``).
- ``onnx``: the whole cross-encoder (any head and pooling) as one ONNX graph with dynamic
  batch and length: inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; output
  ``logits``.

Both folders carry the tokenizer, ``cm_decision.json`` (criteria, how logits become
probabilities, the calibration and per-criterion thresholds, max length and truncation) and
a model card (``README.md``). A LoRA run is exported merged: its checkpoint already holds
merged weights (cm.model.checkpoint.plain_state_dict).
"""

import shutil
import tempfile
from pathlib import Path

from cm.errors import UserError
from cm.export.card import model_card
from cm.export.decision import decision_file

FORMATS = ("hf", "onnx")


def export(checkpoint, fmt: str, out: Path) -> Path:
    """Write ``checkpoint`` (a loaded cm.model.checkpoint.Checkpoint) as ``fmt`` into ``out``
    (built in a temporary sibling, then renamed into place: never a half-written folder)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder; choose a new path "
                        "or remove it")
    writer = _writer(fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        writer(checkpoint, scratch)
        checkpoint.tokenizer.save_pretrained(scratch)
        decision_file(checkpoint, scratch / "cm_decision.json", fmt)
        (scratch / "README.md").write_text(model_card(checkpoint, fmt))
        if out.exists():
            out.rmdir()
        scratch.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _writer(fmt: str):
    if fmt == "hf":
        from cm.export.hf import write_hf

        return write_hf
    if fmt == "onnx":
        from cm.export.onnx import write_onnx

        return write_onnx
    raise UserError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
