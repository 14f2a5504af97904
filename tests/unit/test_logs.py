"""scingest.logs: the adapters' logging, error ending and fast exit."""

from __future__ import annotations

import re
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


def test_an_unexpected_error_ends_the_log_with_its_traceback(tmp_path):
    """Issue 22, case 6: a bug's traceback was on Snakemake's stderr only."""
    done = _run(
        tmp_path,
        """
        from scingest.logs import end_job, workflow_step

        with workflow_step("job.log") as logger:
            logger.info("merging")
            float(None)
        end_job()
        """,
    )
    assert done.returncode == 1
    log = (tmp_path / "job.log").read_text()
    assert log.index("merging") < log.index("unexpected TypeError")
    assert "Traceback" in log and log.rstrip().endswith(
        "float() argument must be a string or a real number, not 'NoneType'"
    )


def test_frozen_imports_pause_the_collector_and_freeze_what_they_created(tmp_path):
    """Inside the block the cyclic collector is off (no full passes while the modules'
    objects are created); after it the collector is on again, the objects are frozen out
    of its passes, and the log says how many. A failing import still turns it back on."""
    done = _run(
        tmp_path,
        """
        import gc
        from scingest.logs import frozen_imports, workflow_step

        with workflow_step("job.log"):
            before = gc.get_freeze_count()
            with frozen_imports():
                inside = gc.isenabled()
                import json, fractions, decimal
            print(inside, gc.isenabled(), gc.get_freeze_count() > before + 1000)
            try:
                with frozen_imports():
                    import no_such_module_here
            except ImportError:
                print("after a failed import:", gc.isenabled())
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False True True", "after a failed import: True"]
    log = (tmp_path / "job.log").read_text()
    assert re.search(r"imports: [\d.]+ s \(\d+ objects kept out of garbage collection\)", log)
