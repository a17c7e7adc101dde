"""``cm bench``: optimization configurations side by side against a plain Hugging Face
training loop, on the same examples (``config`` reads the file, ``runner`` measures,
``reference`` is the plain loop, ``flops`` counts model FLOPs, ``report`` writes results)."""
