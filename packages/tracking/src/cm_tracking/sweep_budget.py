"""The study-wide trial budget: ``hpo.trials`` counts every trial of a study, over all of
its workers, joins and resumes.

A worker claims a slot before it asks Optuna for a trial: a row (study name, slot)
inserted in a table of the study's own database, whose primary key lets exactly one insert
of each slot succeed, on sqlite and on PostgreSQL alike. The creator of a study clears the
slots a deleted study of the same name left behind. Slots 0 .. trials-1 exist; a worker that finds
them all taken stops, so a trial that runs, is pruned, fails or is still running has used
its slot and N workers never make more than ``trials`` trials. (Counting the study's trials
and then asking would let two workers both see one slot left.)"""

import attrs
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from cm_tracking.sweep_study import engine_args, storage_url

SLOTS = Table("cm_trial_slots", MetaData(),
              Column("study", String(512), primary_key=True),
              Column("slot", Integer, primary_key=True, autoincrement=False),
              Column("worker", String(255), nullable=False))


def create_slots_table(engine) -> None:
    """The slots table, once per database (workers starting together may race to it)."""
    try:
        SLOTS.create(engine, checkfirst=True)
    except DBAPIError:  # another worker created it between the check and the create
        if not inspect(engine).has_table(SLOTS.name):
            raise


def taken(engine, study: str) -> int:
    """Trial slots taken (negative slots mark other claims, e.g. the confirmation's)."""
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(SLOTS)
                                 .where(SLOTS.c.study == study, SLOTS.c.slot >= 0))


def insert_slot(engine, study: str, slot: int, worker: str) -> bool:
    """True when this insert took ``slot``, False when another worker holds it."""
    try:
        with engine.begin() as connection:
            connection.execute(insert(SLOTS).values(study=study, slot=slot, worker=worker))
        return True
    except IntegrityError:
        return False


def claim(engine, study: str, trials: int, worker: str) -> int | None:
    """The slot this worker now holds, or None when all ``trials`` slots are taken."""
    for slot in range(taken(engine, study), trials):
        if insert_slot(engine, study, slot, worker):
            return slot
    return None


@attrs.define
class Budget:
    """This worker's view of a study's budget: ``trials`` slots in the study's database."""

    engine: object
    study: str
    trials: int
    worker: str  # host:pid, recorded with each slot it claims

    @classmethod
    def of(cls, url: str, study: str, trials: int, new: bool, worker: str) -> "Budget":
        engine = create_engine(storage_url(url), **engine_args(url))
        create_slots_table(engine)
        if new:
            with engine.begin() as connection:
                connection.execute(delete(SLOTS).where(SLOTS.c.study == study))
        return cls(engine, study, trials, worker)

    def left(self) -> int:
        return max(0, self.trials - taken(self.engine, self.study))

    def claim(self) -> bool:
        return claim(self.engine, self.study, self.trials, self.worker) is not None

    def hold(self, slot: int) -> bool:
        """Take a claim of its own (a negative slot) that only one worker may hold."""
        return insert_slot(self.engine, self.study, slot, self.worker)

    def release(self, slot: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(SLOTS).where(SLOTS.c.study == self.study,
                                                   SLOTS.c.slot == slot))
