"""``cm replay --run-id ID``: re-run a logged run from its stored, resolved config and say
how far the new test macro-F1 lands from the original.

The config comes from the run's ``config.toml`` artifact (overrides included); the dataset
must still have the SHA-256 digests the run logged, unless the caller allows a change. The
new run goes to the same MLflow store, tagged ``cm.replay_of`` and ``cm.replay.delta_pp``."""

import tempfile
from pathlib import Path

import attrs
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from cm import terminal
from cm.config import TrackerSpec, decode, read_toml
from cm.errors import UserError
from cm.registry import get_registry
from cm_tracking.mlflow_tracker import DIGEST_TAG, dataset_tags, load_corpus
from cm_tracking.options import TRIAL_TAGS, MlflowOptions, tracking_uri
from cm_tracking.store import check_store

METRIC = "test_tuned/post_macro_f1"  # the headline: 9-criterion macro-F1, tuned thresholds


@attrs.frozen
class Outcome:
    original: float  # the replayed run's METRIC
    replayed: float  # the new run's
    run_id: str  # the new MLflow run
    tolerance_pp: float
    compared: int = 0  # val/test scores found in both runs
    changed: tuple = ()  # those that differ

    @property
    def delta_pp(self) -> float:
        return (self.replayed - self.original) * 100

    @property
    def within(self) -> bool:
        return abs(self.delta_pp) <= self.tolerance_pp


def replay(run_id, *, uri=None, eval_only=False, allow_data_change=False, tolerance_pp=0.5,
           console=None) -> Outcome:
    console = console or terminal.console()
    uri = uri or tracking_uri()
    check_store(uri)
    client = MlflowClient(tracking_uri=uri)
    original = fetch_run(client, run_id, uri)
    if METRIC not in original.data.metrics:
        raise UserError(f"run {run_id} has no {METRIC} (status {original.info.status}); only "
                        "runs that finished their evaluation can be replayed")
    with tempfile.TemporaryDirectory(prefix="cm-replay-") as scratch:
        experiment = restore_config(client, run_id, Path(scratch))
        logged = {k: v for k, v in original.data.tags.items() if k.startswith(DIGEST_TAG)}
        if not logged and not allow_data_change:
            raise UserError(f"run {run_id} logged no dataset digests ({DIGEST_TAG}* tags), so "
                            "its data cannot be checked; pass --allow-data-change to replay "
                            "anyway")
        changed = changed_files(logged, experiment)
        if changed and not allow_data_change:
            raise UserError(f"the dataset changed since run {run_id}: {', '.join(changed)} "
                            "differ from the logged SHA-256; pass --allow-data-change to "
                            "replay on the data as it is now")
        tags = {"cm.replay_of": run_id,
                "cm.replay.mode": "eval-only" if eval_only else "retrain",
                "cm.replay.data_changed": str(bool(changed)).lower()}
        experiment = tracked(experiment, uri, tags)
        if eval_only:
            from cm.train.reevaluate import reevaluate

            run = reevaluate(experiment, download(client, run_id, "checkpoint", Path(scratch)),
                             console=console)
        else:
            from cm.train.engine import run_experiment

            run = run_experiment(experiment, console=console)
    new_id = run.links["mlflow"]["run_id"]
    compared, differing = differences(original.data.metrics, run.metrics)
    outcome = Outcome(original.data.metrics[METRIC], run.metrics[METRIC], new_id, tolerance_pp,
                      compared, tuple(differing))
    client.set_tag(new_id, "cm.replay.delta_pp", f"{outcome.delta_pp:+.4f}")
    client.set_tag(new_id, "cm.replay.within_tolerance", str(outcome.within).lower())
    client.log_metric(new_id, "replay/delta_pp", outcome.delta_pp)
    console.print(report(run_id, outcome))
    return outcome


def fetch_run(client, run_id, uri):
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise UserError(f"no MLflow run {run_id!r} at {uri}; pass --tracking-uri or set "
                        "MLFLOW_TRACKING_URI to the store that holds it") from None


def download(client, run_id, path, into: Path) -> Path:
    names = {a.path for a in client.list_artifacts(run_id)}
    if path not in names:
        hint = ("log it with [tracking.mlflow] log_checkpoint = true"
                if path == "checkpoint" else "was it logged by cm's mlflow tracker?")
        raise UserError(f"run {run_id} has no {path!r} artifact; {hint}")
    return Path(client.download_artifacts(run_id, path, str(into)))


def logged_checkpoint(run_id, uri, into: Path) -> Path:
    """The best checkpoint a run logged (``log_checkpoint = true``), downloaded into ``into``
    (for ``cm predict --run-id``)."""
    uri = uri or tracking_uri()
    check_store(uri)
    client = MlflowClient(tracking_uri=uri)
    fetch_run(client, run_id, uri)
    return download(client, run_id, "checkpoint", into)


def logged_predictions(run_id, uri, into: Path) -> Path:
    """A folder holding the test predictions a run logged (for ``cm compare``)."""
    from cm.evaluate.compare import PREDICTIONS

    uri = uri or tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    fetch_run(client, run_id, uri)
    into.mkdir(parents=True, exist_ok=True)
    return download(client, run_id, PREDICTIONS, into).parent


def restore_config(client, run_id, scratch: Path):
    """The resolved experiment the run logged, decoded by this cm (strictly, as always)."""
    path = download(client, run_id, "config.toml", scratch)
    return decode(read_toml(path), f"config.toml of run {run_id}", registry=get_registry())


def changed_files(logged: dict, experiment) -> list[str]:
    """Dataset files whose SHA-256 differs from (or is missing next to) the logged
    ``cm.dataset.sha256.<file>`` tags."""
    now = {k: v for k, v in dataset_tags(experiment, load_corpus(experiment)).items()
           if k.startswith(DIGEST_TAG)}
    return sorted(k.removeprefix(DIGEST_TAG) for k in logged.keys() | now.keys()
                  if logged.get(k) != now.get(k))


def tracked(experiment, uri, tags):
    """The experiment with its mlflow tracker pointed at ``uri`` and carrying ``tags``. The
    URI is written into the config only when the tracker would not find it by itself, so
    one taken from the environment (credentials and all) stays out of ``config.toml``.
    A sweep trial's replay is a run of its own: not nested under the old sweep's parent run,
    not written into the sweep's folder."""
    spec = experiment.tracking.get("mlflow") or TrackerSpec("mlflow", MlflowOptions())
    kept = {k: v for k, v in spec.options.tags.items() if k not in TRIAL_TAGS}
    if kept != spec.options.tags:
        experiment = attrs.evolve(experiment, output_dir=outside_sweep(experiment.output_dir))
    options = attrs.evolve(spec.options, tags={**kept, **tags})
    if tracking_uri(options) != uri:
        options = attrs.evolve(options, tracking_uri=uri)
    tracking = {**experiment.tracking, "mlflow": attrs.evolve(spec, options=options)}
    return attrs.evolve(experiment, tracking=tracking)


def outside_sweep(output_dir: str) -> str:
    """A trial's ``<output_dir>/<name>/sweeps/<study>/trial-<n>`` -> ``<output_dir>``."""
    path = Path(output_dir)
    if path.name.startswith("trial-") and path.parent.parent.name == "sweeps":
        return str(path.parents[3])
    return output_dir


def differences(logged: dict, now: dict) -> tuple[int, list[str]]:
    """How many val/test scores both runs have, and which differ. A new score is compared
    with the logged ``best/<key>`` where there is one (the best checkpoint's value; the
    logged ``<key>`` then holds the per-epoch history, e.g. ``val/*``, ``val_tuned/*``)."""
    scored = {k: f"best/{k}" if f"best/{k}" in logged else k for k in now
              if k.split("/")[0] in ("val", "val_tuned", "test", "test_tuned")}
    both = {k: logged[v] for k, v in scored.items() if v in logged}
    return len(both), sorted(k for k, v in both.items() if now[k] != v)


def report(run_id, outcome: Outcome) -> str:
    verdict = ("[green]within[/green]" if outcome.within else "[red]beyond[/red]")
    return (f"{METRIC}: original {outcome.original:.4f} (run {run_id}), replay "
            f"{outcome.replayed:.4f} (run {outcome.run_id}); delta {outcome.delta_pp:+.2f} pp, "
            f"{verdict} the tolerance of {outcome.tolerance_pp} pp\n"
            f"val/test scores: {outcome.compared} compared, "
            + (f"{len(outcome.changed)} differ (e.g. {', '.join(outcome.changed[:3])})"
               if outcome.changed else "all identical"))
