"""``cm bench``: measure optimization configurations side by side."""

import click

from cm.cli.params import experiment_argument


@click.command()
@experiment_argument
def bench(experiment_file, overrides):
    """Benchmark the configurations in EXPERIMENT_FILE's [bench] table against a plain
    Hugging Face training loop: samples/s, real tokens/s, padding waste, peak memory, MFU."""
    from cm import terminal
    from cm.bench.config import load_bench
    from cm.bench.report import assemble, output_directory, table, write_results
    from cm.bench.runner import run_bench
    from cm.registry import get_registry

    registry = get_registry()
    spec = load_bench(experiment_file, overrides, registry)
    console = terminal.console()
    console.print(f"[bold]cm bench[/bold] {experiment_file}: {len(spec.configs)} "
                  f"configuration(s) + reference, {spec.table.examples} examples each, "
                  f"{spec.table.rounds} round(s)")
    directory = None

    def write(measured):  # after every row: an interrupted bench keeps what it measured
        nonlocal directory
        directory = directory or output_directory(spec, measured["device"])
        return write_results(assemble(spec, measured), directory)

    result = assemble(spec, run_bench(spec, registry, console, on_row=write))
    paths = write_results(result, directory)
    console.print(table(result))
    console.print("results: " + ", ".join(str(p) for p in paths.values()))
