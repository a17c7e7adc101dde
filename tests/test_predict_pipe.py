"""`cm predict` into a pipe whose reader has gone (`cm predict ... | head -2`) ends quietly
with 141, as a Unix tool stopped by SIGPIPE does (issue 20, point 3)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"


def test_output_to_a_closed_pipe_ends_quietly_with_141(checkpoint, tmp_path):
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\n" + "".join(f"p{i},I cannot sleep\n" for i in range(40)))
    process = subprocess.Popen([CM, "predict", str(posts), "--model", str(checkpoint)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={"CM_CRASH_DIR": str(tmp_path / "crashes"),
                                    "PATH": str(Path(sys.executable).parent),
                                    "OMP_NUM_THREADS": "1", "HOME": str(Path.home())})
    process.stdout.close()  # the reader is gone before the first row is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141, err
    assert err == ""
    assert not (tmp_path / "crashes").exists()
