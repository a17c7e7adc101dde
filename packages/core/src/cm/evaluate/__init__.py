"""Evaluation: metrics over (post, criterion) pairs, criteria and posts, and report artifacts.

``metrics`` is numpy-only (plus scikit-learn for the AUCs) and returns JSON-ready values;
``report`` writes one split's files (JSON, CSV, confusion-matrix PNG) and builds the terminal
summary table. Nothing here ever sees post text, only ids, so artifacts are safe to share.
Import the submodules directly; this package imports nothing so the CLI starts fast.
"""
