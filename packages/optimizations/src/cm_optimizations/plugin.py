"""Registration of the built-in optimizations."""

from cm.hookspecs import hookimpl
from cm.optimization import OptimizationOptions
from cm_optimizations import tf32


@hookimpl
def register_optimizations(register):
    register("tf32", tf32.build, options=OptimizationOptions)
