"""``cm export``: a finished run's checkpoint as a Hugging Face folder or an ONNX model."""

from pathlib import Path

import click


@click.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["hf", "onnx"]), required=True,
              help="hf: a plain transformers folder (cls pooling + linear head on DeBERTa); "
                   "onnx: the whole cross-encoder, any head and pooling.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="A new (or empty) folder to write.")
def export(checkpoint, fmt, out):
    """Export CHECKPOINT (a finished run's checkpoint/ folder) with its tokenizer, its
    decision (cm_decision.json: criteria, calibration, thresholds, max length, truncation)
    and a model card (README.md)."""
    from cm.export import export as write
    from cm.model.checkpoint import load_checkpoint

    written = write(load_checkpoint(checkpoint), fmt, out)
    click.echo(f"exported {checkpoint} as {fmt} to {written}")
