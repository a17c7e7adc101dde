"""Which code ran: the git commit of cm's sources and whether they had changes."""

import subprocess
from pathlib import Path


def git_state(directory) -> dict:
    """``{"commit", "dirty"}`` of the repository holding ``directory``, or Nones where git
    cannot say (not a repository, no git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def code_state() -> dict:
    """The commit of the code that runs: the repository holding cm's sources (an editable
    install), else the working directory's."""
    import cm

    for directory in (Path(cm.__file__).parent, Path.cwd()):
        state = git_state(directory)
        if state["commit"]:
            return state
    return {"commit": None, "dirty": None}
