"""cm-heads: classification heads and poolings, registered through the ``cm`` entry point.

The modules are importable on their own (``cm_heads.heads``, ``cm_heads.poolings``) so a
model can be assembled in a notebook without the registry; ``cm_heads.plugin`` only wires
them into cm's hooks.
"""

__version__ = "0.1.0"
