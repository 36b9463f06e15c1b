"""Benchmark-only tools (granian, py-spy) in their own venv, bench/.venv-tools.

The project's .venv is left as it is: the tools venv is made from the same interpreter and a
.pth file adds .venv's site-packages to it, so granian can import the provider. Installed from
PyPI with pip, by name and pinned version, only when a run asks for them.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOOLS_VENV = BENCH / ".venv-tools"
PINS = {"granian": "granian==2.8.7", "py-spy": "py-spy==0.4.3"}


class ToolUnavailable(RuntimeError):
    pass


def tools_bin() -> Path:
    return TOOLS_VENV / "bin"


def ensure(*names: str) -> Path:
    """Install the named tools into bench/.venv-tools if missing; returns its bin folder."""
    bin_dir = tools_bin()
    if not (bin_dir / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
        purelib = Path(sysconfig.get_paths()["purelib"])  # the project's .venv site-packages
        tools_lib = Path(subprocess.run(
            [str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip())
        (tools_lib / "_project_venv.pth").write_text(str(purelib) + "\n")
    missing = [n for n in names if not (bin_dir / n).exists()]
    if missing:
        proc = subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *(PINS[n] for n in missing)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise ToolUnavailable(f"pip install {' '.join(PINS[n] for n in missing)} failed:\n"
                                  f"{proc.stderr.strip()[-2000:]}")
    return bin_dir
