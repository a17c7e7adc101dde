"""cm.testing without pytest: a script (or `cm` user) imports TINY_RUN from it."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration  # starts a process: not in `nox -s quick`

WITHOUT_PYTEST = """
import json, sys

class NoPytest:
    def find_spec(self, name, path=None, target=None):
        if name == "pytest" or name.startswith(("pytest.", "_pytest")):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoPytest())
for name in [m for m in sys.modules if m == "pytest" or m.startswith(("pytest.", "_pytest"))]:
    del sys.modules[name]
try:
    import pytest
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("the block did not hide pytest")
from cm.testing import TINY_RUN, tiny_toml
print(json.dumps({"tiny_run": TINY_RUN, "toml": tiny_toml(),
                  "pytest": [m for m in sys.modules if "pytest" in m]}))
"""


def test_tiny_run_imports_without_pytest():
    from cm.testing import TINY_RUN

    done = subprocess.run([sys.executable, "-c", WITHOUT_PYTEST], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["tiny_run"] == TINY_RUN
    assert "[model.tiny]\nhidden_size = 32\n" in found["toml"]
    assert found["pytest"] == []
