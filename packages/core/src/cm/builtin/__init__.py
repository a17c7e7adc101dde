"""cm-core's own components: losses, optimizers and LR schedulers (datasets come later).

They are registered by ``cm.builtin.plugin`` through the ``core`` entry point of group
``cm``, exactly like a third-party plugin, so the registry treats them no differently.
"""
