"""What a worker that joins or resumes a study must agree with: the study's config.

The creator stores its resolved config (flattened, as JSON) on the study; a later worker
whose own differs is refused with the differing keys, since its trials would answer another
question than the study's. Per-worker keys are left out: ``output_dir`` (a path on that
machine), ``hpo.timeout_s`` (that worker's time limit) and ``hpo.trials`` (the study's
budget: a resume may raise it to run more trials)."""

import json

from cm.config import flatten, to_dict
from cm.errors import UserError

CONFIG = "cm.config"  # study user attribute
PER_WORKER = ("output_dir", "hpo.timeout_s", "hpo.trials")


def study_config(experiment) -> str:
    flat = {k: v for k, v in flatten(to_dict(experiment)).items() if k not in PER_WORKER}
    return json.dumps(flat, sort_keys=True, default=str)


def check_same_config(study, experiment, source: str) -> None:
    """Refuse to join ``study`` with a config other than the one it was created with."""
    stored = study.user_attrs.get(CONFIG)
    if stored is None:
        return  # created by a cm that did not store its config
    theirs, ours = json.loads(stored), json.loads(study_config(experiment))
    differing = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    if differing:
        shown = "; ".join(f"{k}: study {theirs.get(k, '(unset)')!r}, "
                          f"this run {ours.get(k, '(unset)')!r}" for k in differing[:5])
        more = f" (and {len(differing) - 5} more)" if len(differing) > 5 else ""
        raise UserError(f"{source}: study {study.study_name!r} was created with another "
                        f"config: {shown}{more}; resume with the study's config (the same "
                        "file and --set values) or start a new --study-name")
