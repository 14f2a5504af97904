"""scingest.logs: the adapters' logging, error ending and fast exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "adapter.py"
    script.write_text(textwrap.dedent(body))
    env = {"PYTHONPATH": str(REPO / "scripts")}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path
    )


def test_end_job_exits_zero_with_logs_and_files_complete(tmp_path):
    done = _run(
        tmp_path,
        """
        import threading, time
        from scingest.logs import end_job, workflow_step

        with workflow_step("job.log") as logger:
            logger.info("written")
            with open("out.txt", "w") as fh:
                fh.write("complete")
        # a non-daemon thread would keep a normal exit waiting; end_job does not wait
        threading.Thread(target=time.sleep, args=(60,)).start()
        end_job()
        raise SystemExit("not reached")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "not reached" not in done.stderr
    assert "written" in (tmp_path / "job.log").read_text()
    assert (tmp_path / "out.txt").read_text() == "complete"


def test_an_error_ends_with_status_1_and_one_line(tmp_path):
    done = _run(
        tmp_path,
        """
        from scingest.errors import ScingestError
        from scingest.logs import end_job, workflow_step

        with workflow_step("job.log"):
            raise ScingestError("bad input")
        end_job()
        """,
    )
    assert done.returncode == 1
    assert "bad input" in done.stderr and "Traceback" not in done.stderr
