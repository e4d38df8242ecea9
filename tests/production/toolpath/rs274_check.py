"""LinuxCNC's standalone interpreter as a test oracle: does a real interpreter accept our G-code?

Until production/toolpath/rs274.py (the milling verification branch) lands, the laser tests
call the `rs274` binary (Debian package linuxcnc-uspace) themselves through this helper.
"""

import os
import shutil
import subprocess
import tempfile

import pytest


def rs274_errors(gcode: bytes) -> str:
    """What rs274 says about a program: "" when it runs it to the end without error."""
    binary = shutil.which("rs274")
    if binary is None:
        if os.environ.get("CI"):
            raise AssertionError("rs274 is not installed (Debian package linuxcnc-uspace)")
        pytest.skip("rs274 is not installed (Debian package linuxcnc-uspace)")
    with tempfile.TemporaryDirectory() as directory:
        source = os.path.join(directory, "program.ngc")
        with open(source, "wb") as handle:
            handle.write(gcode)
        run = subprocess.run(
            [binary, "-g", source, os.path.join(directory, "canon.txt")],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    if run.returncode == 0:
        return ""
    # rs274 prints "executing" and then the error with the offending line on stdout.
    said = (run.stdout + run.stderr).decode(errors="replace").replace("executing", "").strip()
    return said or f"rs274 exited with {run.returncode}"
