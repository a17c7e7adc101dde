"""torch.compile, and CUDA graphs through compile's ``reduce-overhead`` mode.

Compiled code is specialised to input shapes; dynamic padding gives every batch a new
length, i.e. a recompile (or, past dynamo's recompile limit, a silent fall back to eager).
So training batches are padded up to a multiple of ``pad_to_multiple`` tokens
(``context.pad_to_multiple``): with max_length 512 and multiples of 64 the model sees at
most 8 lengths (x 2 batch sizes: the last batch of an epoch is smaller), each compiled once.
The recompile limit is raised to that count. ``dynamic = true`` compiles one
shape-polymorphic graph instead (fewer compiles, less specialised code).

Only training is compiled: ``context.model`` becomes the compiled wrapper, while
evaluation and checkpoints use the plain model, which shares its parameters (so checkpoint
keys have no ``_orig_mod.`` prefix). DeBERTa compiles with graph breaks in transformers'
code (the relative-position helpers); ``fullgraph`` stays off so they are allowed.

CUDA graphs replay a recorded sequence of kernel launches, removing per-kernel launch
overhead (large for small batches); they need fixed shapes and memory addresses, hence
static padding, no packing (its row and segment counts vary per batch) and CUDA.
"""


import torch

from cm.optimization import Optimization


def compile_training(context, mode, dynamic, multiple):
    """Compile ``context.model`` for training; pad batch lengths to ``multiple`` unless
    ``dynamic``."""
    if not dynamic:
        context.pad_lengths_to(multiple)
        lengths = -(-context.experiment.data.max_length // multiple)
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit,
                                                   2 * lengths)
    context.model = torch.compile(context.model, mode=mode, dynamic=dynamic)


class Compile(Optimization):
    conflicts = ("cuda_graphs",)

    def __init__(self, options):
        super().__init__(options)
        if not options.dynamic:  # packed rows vary in count and width: use dynamic = true
            self.conflicts = ("cuda_graphs", "packing")

    def unavailable(self, device):
        if self.options.compile_mode == "reduce-overhead" and device != "cuda":
            return "compile_mode 'reduce-overhead' records CUDA graphs: needs CUDA"
        return None

    def apply(self, context):
        options = self.options
        compile_training(context, options.compile_mode, options.dynamic,
                         options.pad_to_multiple)


class CUDAGraphs(Optimization):
    conflicts = ("compile", "packing")  # compile: one compiler config; packing: varying shapes

    def unavailable(self, device):
        if device != "cuda" or not torch.cuda.is_available():
            return "needs CUDA (CUDA graphs record GPU kernel launches)"
        return None

    def apply(self, context):
        compile_training(context, "reduce-overhead", False, self.options.pad_to_multiple)
