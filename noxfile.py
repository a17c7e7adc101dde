"""Sessions run inside the environment made by ``scripts/setup --dev`` (no per-session venv:
torch and the editable cm packages are installed once there)."""

import sys

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]
# pytest-xdist: a worker per core; a module's tests stay on one worker (its module fixtures are
# built once), in the collection order conftest.py sets (integration modules first)
PARALLEL = ["-n", "auto", "--dist", "loadfile", "--no-loadscope-reorder"]


@nox.session
def lint(session):
    """ruff over the whole tree."""
    session.run(sys.executable, "-m", "ruff", "check", ".")


@nox.session
def tests(session):
    """The whole test suite (unit, property, integration)."""
    session.run(sys.executable, "-m", "pytest", *PARALLEL, *session.posargs)


@nox.session
def quick(session):
    """The inner loop: unit and property tests, without the modules marked integration
    (those that train, or start processes or servers)."""
    session.run(sys.executable, "-m", "pytest", *PARALLEL, "-q", "-m",
                "not integration and not cuda", *session.posargs)


@nox.session
def demo(session):
    """The embedded default job: the offline demo experiment on CPU."""
    session.run("cm", "run", "experiments/demo.toml", *session.posargs, external=True)


@nox.session
def bench(session):
    """cm bench on CPU: optimization configurations against a plain Hugging Face loop; pass
    e.g. `-- --set bench.rounds=1` to override. Results go to benchmarks/results/."""
    session.run("cm", "bench", "benchmarks/cpu.toml", *session.posargs, external=True)
