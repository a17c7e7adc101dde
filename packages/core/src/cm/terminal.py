"""The console cm's commands print to.

On a terminal rich fits tables to its width. Without one (a batch job under SLURM, CI, output
sent to a file) rich assumes 80 columns and squeezes tables: headers are cut ("refe…") and
intervals wrap onto two lines. There tables print at their natural width instead, or at
``COLUMNS`` when it is set: nothing is cut, and a log keeps one line per table row.
"""

import os

from rich.console import Console

# columns: wide enough that no table is squeezed (tables do not expand); what fills the
# width (console.rule) is not used by cm for that reason
NATURAL = 10_000


def console(**kwargs) -> Console:
    """A rich Console (``kwargs`` as rich's) at its natural width when not on a terminal."""
    made = Console(**kwargs)
    if not made.is_terminal and "width" not in kwargs and not os.environ.get("COLUMNS"):
        made.width = NATURAL
    return made
