"""What ``cm config validate``, ``cm run`` and ``cm sweep`` say about failed plugins before
any work: one warning line per failed plugin, and a warning where a component the config
names was meant to come from a failed plugin but another one of that name is used
(``cm.preflight`` checks the factories)."""

import click

from cm.cli.params import load
from cm.config.schema import used_components
from cm.errors import first_line
from cm.registry import get_registry


def load_checked(experiment_file, overrides):
    """The experiment, loaded after the failed plugins are named; a warning for each
    component a failed plugin meant to provide."""
    registry = get_registry()
    warn_failed_plugins(registry)
    experiment = load(experiment_file, overrides)
    warn_replaced(experiment, registry)
    return experiment


def warn_failed_plugins(registry) -> None:
    """One line on stderr for each plugin that failed to load or register."""
    errors = {}
    for failure in registry.failures:
        errors.setdefault(failure.info, []).append(first_line(failure.error))
    for info, problems in errors.items():
        warn(f"plugin {info} failed, what it registers is left out: {'; '.join(problems)} "
             "(`cm plugins --verbose` shows where)")


def warn_replaced(experiment, registry) -> None:
    """A warning where a failed plugin meant to provide a component the experiment uses and
    another plugin's component of that name is used instead."""
    for path, spec in used_components(experiment):
        component = registry.get(spec.kind, spec.name)
        for failure in registry.failed_providers(spec.kind, spec.name):
            if failure.info != component.provider:
                warn(f"{path}: {spec.kind} {spec.name!r} was meant to come from plugin "
                     f"{failure.info}, which failed; the one of {component.provider} is used "
                     "instead (fix that plugin, or name another component)")


def warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)
