"""Debian packages some tests need (chromium, tmux): found, installed when missing and the
tests run as root, skipped with the reason otherwise; under CI (the Makefile's go-servers
target installs them) a missing one is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def require(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` if needed."""
    path = shutil.which(command)
    if path:
        return path
    why = f"{command} is not installed (Debian package {package})"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "install", "-y", "-q", package],
                    ["sh", "-c", f"apt-get update -q && apt-get install -y -q {package}"]):  # fmt: skip
            r = subprocess.run(cmd, capture_output=True, env=env, timeout=900)
            path = shutil.which(command)
            if r.returncode == 0 and path:
                return path
        why += f" and `apt-get install {package}` failed"
    if os.environ.get("CI"):
        pytest.fail(f"{why} (make go-servers installs it)")
    pytest.skip(why)
