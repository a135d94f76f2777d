"""Node packages for the tests that run a JavaScript client: installed with ``npm ci`` from
the folder's committed package-lock.json, and only when node_modules does not match it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

NPM_TIMEOUT = 300.0


def installed_is_locked(folder: Path, pinned: Sequence[str]) -> bool:
    """node_modules holds exactly the versions package-lock.json pins for ``pinned``."""
    lock = json.loads((folder / "package-lock.json").read_text())["packages"]
    for name in pinned:
        manifest = folder / "node_modules" / name / "package.json"
        if not manifest.is_file():
            return False
        if json.loads(manifest.read_text())["version"] != lock[f"node_modules/{name}"]["version"]:
            return False
    return True


def ensure_installed(npm: str, folder: Path, pinned: Sequence[str]) -> None:
    if installed_is_locked(folder, pinned):
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    assert installed_is_locked(folder, pinned)
