"""Backbones: pretrained DeBERTaV3 checkpoints, or a tiny offline DeBERTaV3-shaped stand-in.

The tiny option exists so the whole pipeline (tokenize, train, evaluate) runs without the
Hugging Face hub, e.g. in tests, CI and air-gapped machines.
"""
