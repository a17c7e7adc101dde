"""The study-wide trial budget's slots and the checks a joining worker passes, on real
sqlite databases (no training)."""

import threading
from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cm.config import load_experiment
from cm.errors import UserError
from cm.registry import get_registry
from cm.testing import tiny_toml
from cm_tracking.sweep import resume_command
from cm_tracking.sweep_budget import Budget
from cm_tracking.sweep_join import check_same_config, study_config

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "experiments" / "demo-posts.toml"


@pytest.mark.parametrize("trials", [1, 5])
def test_workers_claiming_at_once_take_exactly_the_budget(tmp_path, trials):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    Budget.of(url, "s", trials, True, "creator")
    workers = [Budget.of(url, "s", trials, False, f"w{i}") for i in range(3)]  # 3 engines
    start = threading.Barrier(len(workers))
    taken = []

    def claim_all(budget):
        start.wait()
        taken.append(sum(budget.claim() for _ in range(4)))

    threads = [threading.Thread(target=claim_all, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(taken) == trials and len(taken) == 3
    assert Budget.of(url, "s", trials, False, "late").left() == 0


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(0, 9), st.integers(1, 6))
def test_claims_never_exceed_the_budget_and_a_resume_may_raise_it(trials, attempts, raised):
    url = "sqlite://"  # one in-memory database per example
    budget = Budget.of(url, "s", trials, True, "a")
    taken = sum(budget.claim() for _ in range(attempts))
    assert taken == min(trials, attempts)
    assert budget.left() == trials - taken
    resumed = Budget(budget.engine, "s", trials + raised, "b")
    assert sum(resumed.claim() for _ in range(trials + raised + 1)) == trials + raised - taken
    assert not Budget(budget.engine, "other", 0, "c").claim()


def test_a_claim_of_its_own_is_held_once_released_and_not_a_trial(tmp_path):
    budget = Budget.of(f"sqlite:///{tmp_path / 'o.db'}", "s", 2, True, "a")
    assert budget.hold(-1) and not budget.hold(-1)
    assert budget.left() == 2
    budget.release(-1)
    assert budget.hold(-1)


def test_a_new_study_of_a_reused_name_starts_with_its_whole_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert Budget.of(url, "s", 1, True, "a").claim()
    assert Budget.of(url, "s", 1, False, "b").left() == 0
    assert Budget.of(url, "s", 1, True, "c").left() == 1


def experiment(tmp_path, *sets):
    path = tmp_path / "hpo.toml"
    path.write_text(f'base = "{DEMO}"\n{tiny_toml()}\n[hpo]\ntrials = 2\n'
                    '[hpo.space."train.lr"]\ntype = "float"\nlow = 1e-4\nhigh = 1e-2\n')
    return load_experiment(path, sets, registry=get_registry())


def test_a_join_with_another_config_is_refused_naming_the_keys(tmp_path):
    study = optuna.create_study(study_name="s")
    study.set_user_attr("cm.config", study_config(experiment(tmp_path)))
    check_same_config(study, experiment(tmp_path, "hpo.trials=9", "hpo.timeout_s=60",
                                        'output_dir="elsewhere"'), "hpo.toml")
    with pytest.raises(UserError) as info:
        check_same_config(study, experiment(tmp_path, "seed=99", "train.lr=0.002"), "hpo.toml")
    message = str(info.value)
    assert message.startswith("hpo.toml: study 's' was created with another config: ")
    assert "seed: study 13, this run 99" in message
    assert "train.lr: study 0.001, this run 0.002" in message
    assert "the same file and --set values" in message


def test_the_resume_command_keeps_every_set_quoted():
    study = optuna.create_study(study_name="my study")
    command = resume_command(Path("exp/hpo.toml"), ("seed=7", 'name="a b"'),
                             "postgresql://cm:secret@db/optuna", study)
    assert command == ("cm sweep exp/hpo.toml --set seed=7 --set 'name=\"a b\"' --storage "
                       "'postgresql://cm:***@db/optuna' --study-name 'my study'")
