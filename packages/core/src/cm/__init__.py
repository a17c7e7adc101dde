"""cm: fine-tune DeBERTaV3 cross-encoders that match posts to DSM-5 MDD criteria."""

__version__ = "0.1.0"
