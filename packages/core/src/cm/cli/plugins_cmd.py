"""``cm plugins``: every registered component by kind, with provider and options."""

import json
import typing

import attrs
import click
from rich.markup import escape
from rich.table import Table

from cm import terminal
from cm.errors import PluginError, first_line
from cm.registry import KINDS, get_registry


def type_name(tp) -> str:
    """A readable type: ``float | None``, ``list[int]``, ``'relu' | 'gelu'``."""
    if tp is None or tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, __import__("types").UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def plural(kind):
    return f"{kind}es" if kind.endswith("s") else f"{kind}s"


def _default(field):
    if field.default is attrs.NOTHING:
        return "required"
    if isinstance(field.default, attrs.Factory):
        return repr(field.default.factory())
    return repr(field.default)


def describe_options(options_cls) -> list[dict]:
    hints = typing.get_type_hints(options_cls)
    return [
        {"name": f.name, "type": type_name(hints.get(f.name, f.type)), "default": _default(f)}
        for f in attrs.fields(options_cls)
    ]


def listing(registry) -> dict:
    """The registry as plain data (what ``--json`` prints)."""
    return {
        "components": {
            kind: [
                {
                    "name": c.name,
                    "plugin": c.provider.name,
                    "distribution": c.provider.distribution,
                    "version": c.provider.version,
                    "options": describe_options(c.options),
                }
                for c in sorted(registry.components[kind].values(), key=lambda c: c.name)
            ]
            for kind in KINDS
        },
        "failures": [
            {"plugin": f.info.name, "distribution": f.info.distribution,
             "version": f.info.version, "error": f.error, "traceback": f.traceback}
            for f in registry.failures
        ],
        "excluded": [str(info) for info in registry.plugins.excluded],
    }


@click.command()
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only this kind of component.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--verbose", "-v", is_flag=True, help="Show where each failed plugin failed "
              "(its traceback).")
@click.option("--check", is_flag=True, help="Import every factory and check it takes its "
              "contract's arguments; exit 2 naming each one that does not.")
def plugins(kind, as_json, verbose, check):
    """List registered components grouped by kind, their provider and their options.

    Plugins are entry points of group 'cm'. CM_PLUGINS=a,b loads only those plugins;
    CM_DISABLE_PLUGINS=a,b skips them.
    """
    if check:
        check_every_factory(get_registry(), kind)
        return
    data = listing(get_registry())
    if kind:
        data["components"] = {kind: data["components"][kind]}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    console = terminal.console(soft_wrap=False)
    for group, components in data["components"].items():
        table = Table(title=plural(group), title_justify="left", show_lines=False)
        for column in ("name", "provided by", "options (name: type = default)"):
            table.add_column(column, overflow="fold")
        for c in components:
            options = "\n".join(f"{o['name']}: {o['type']} = {o['default']}"
                                for o in c["options"]) or "-"
            table.add_row(c["name"], f"{c['distribution']} {c['version']} ({c['plugin']})",
                          options)
        if not components:
            table.add_row("-", "none registered", "")
        console.print(table)
    for failure in data["failures"]:
        console.print(f"[red]failed plugin[/red] {failure['plugin']} "
                      f"({failure['distribution']} {failure['version']}): "
                      f"{escape(failure['error'])}", highlight=False)
        if verbose and failure["traceback"]:
            console.print(failure["traceback"], markup=False, highlight=False, soft_wrap=True)
    if data["failures"] and not verbose:
        console.print("(cm plugins --verbose shows where they failed)")
    if data["excluded"]:
        console.print("excluded by CM_PLUGINS / CM_DISABLE_PLUGINS: " + ", ".join(data["excluded"]))


def check_every_factory(registry, kind=None) -> None:
    """``cm plugins --check``: every component's factory imported and checked; a plugin
    that failed to load is a problem too."""
    from cm.factories import FactoryError, import_factory

    components = [c for k, table in registry.components.items() if kind in (None, k)
                  for c in table.values()]
    problems = [f"plugin {f.info} failed: {first_line(f.error)} (`cm plugins --verbose` "
                "shows where)" for f in registry.failures]
    for component in components:
        try:
            import_factory(component)
        except FactoryError as error:
            problems.append(str(error))
    if problems:
        raise PluginError("\n".join(problems))
    click.echo(f"{len(components)} components: every factory imports and takes its "
               "contract's arguments")
