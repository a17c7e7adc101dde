"""The hooks cm calls. Registration hooks receive a ``register`` callback:

    @hookimpl
    def register_heads(register):
        register("linear", LinearHead, options=LinearHeadOptions)

``register(name, factory, options=OptionsClass)``: ``options`` is an attrs class whose
fields are the component's TOML options (defaults, types and validators included).
Lifecycle hooks (``run_started`` ... ``run_finished``) are called for each run on that run's
listeners: the installed plugins that implement them, the run's trackers and the objects the
caller passes (``run_experiment(..., listeners=[...])``).
"""

import pluggy

hookspec = pluggy.HookspecMarker("cm")
hookimpl = pluggy.HookimplMarker("cm")

KINDS: dict[str, str] = {}  # component kind -> its registration hook; filled just below


def registration(kind):
    """Declare the registration hook of one kind of component: the one place kind names
    are written (the registry, the config schema and ``cm plugins`` read them here)."""

    def declare(function):
        KINDS[kind] = function.__name__
        return hookspec(function)

    return declare


@registration("head")
def register_heads(register):
    """Classification heads: factory(options, in_features, num_logits) -> nn.Module."""


@registration("pooling")
def register_poolings(register):
    """Poolings: factory(options, hidden_size, num_layers) -> nn.Module with out_features."""


@registration("loss")
def register_losses(register):
    """Losses: factory(options, pos_weight) -> loss module with num_logits."""


@registration("optimizer")
def register_optimizers(register):
    """Optimizers: factory(options, param_groups, lr) -> torch.optim.Optimizer."""


@registration("scheduler")
def register_schedulers(register):
    """LR schedulers: factory(options, optimizer, num_training_steps) -> LRScheduler."""


@registration("optimization")
def register_optimizations(register):
    """Training/throughput optimizations: factory(options) -> cm.optimization.Optimization."""


@registration("dataset")
def register_datasets(register):
    """Datasets: factory(options) -> cm.data.records.Corpus."""


@registration("tracker")
def register_trackers(register):
    """Trackers: factory(options, experiment) -> object implementing lifecycle hooks."""


@hookspec
def register_commands(cli):
    """Add commands to ``cli``, the ``cm`` click.Group: ``cli.add_command(command)``. Called
    once per process; import heavy modules inside the commands, not here."""


@hookspec(firstresult=True)
def fetch_run(run_id, part, tracking_uri, into):
    """The run source behind ``cm predict --run-id`` and ``cm compare ID``: what a tracked run
    logged, downloaded into the folder ``into`` (it lives as long as the command). ``part`` is
    ``"checkpoint"`` (return the ``checkpoint/`` directory ``cm predict`` loads) or
    ``"predictions"`` (return a folder holding the run's test predictions, as a run directory
    does for ``cm compare``); ``tracking_uri`` is the command's ``--tracking-uri`` or None.
    Return None for a ``run_id`` this plugin does not know; the first path returned wins."""


@hookspec
def run_started(run):
    """A run begins: ``run`` carries the resolved experiment, output dir and lineage."""


@hookspec
def step_ended(run, step, metrics):
    """An optimizer step ended; ``metrics`` maps names (train/loss, train/lr, ...) to floats."""


@hookspec
def epoch_ended(run, epoch, metrics):
    """An epoch ended, validation included; pruners may raise to stop the run."""


@hookspec
def evaluated(run, split, metrics, artifacts):
    """A split was evaluated: ``metrics`` maps names to floats, ``artifacts`` names to paths.
    A group of runs (seeds, folds) calls it once with split ``"group"``: its aggregate's
    files (its metrics are the run's own, ``run.metrics``)."""


@hookspec
def run_finished(run, status, error):
    """A run ended with status FINISHED, FAILED or KILLED (``error`` set unless FINISHED)."""
