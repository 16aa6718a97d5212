"""The code a change is measured against, in the same run as the change.

A ratio between two benchmark runs mixes the change with everything else
that differed between them (the machine's load, its clock, the kernel's
caches); a ratio between two implementations measured in one run, their
rounds interleaved, holds only the change. So ``make bench`` also measures
the library as it was at a *baseline* revision, beside the working tree:

- the echo servers ``channels_line@before`` and ``channels_bytes@before``
  run the baseline's ``channels`` package (put first on ``PYTHONPATH``);
- the line splitters ``channels_take@before`` and ``channels_next@before``
  are the baseline's ``LineSplitter``, loaded in the same process under
  another package name, so its rounds interleave with today's.

The baseline is, by default, the revision that the committed results
(``results/latest.json``) measured: each run says how far the code moved
since the figures it replaces. ``make bench BASELINE=REV`` names another
revision; ``BASELINE=none`` measures the working tree alone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from types import ModuleType

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: The suffix that names an implementation run from the baseline's code.
SUFFIX = "@before"

#: The environment variable through which child processes learn where the
#: baseline's source is (the folder that holds its ``channels`` package).
ENV = "CHANNELS_BASELINE_SRC"


def recorded_revision(results: str) -> str | None:
    """The revision the results in ``results`` measured, if they name one."""
    try:
        with open(results) as f:
            revision = json.load(f)["library"]["git"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return revision if isinstance(revision, str) and revision != "unknown" else None


def resolve(revision: str) -> str | None:
    """The full commit ``revision`` names in this repository, or ``None``."""
    done = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        check=False,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or None


def extract(commit: str) -> str:
    """Write ``src/`` of ``commit`` into a new temporary folder; return the
    folder that holds its ``channels`` package. The caller removes it."""
    folder = tempfile.mkdtemp(prefix="channels-baseline-")
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", "--format=tar", commit, "src/channels"],
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    return os.path.join(folder, "src")


def child_env(src: str | None) -> dict[str, str] | None:
    """The environment for a child process that runs the baseline's code
    (``None``: inherit this one)."""
    if src is None:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def split_name(impl: str) -> tuple[str, bool]:
    """``'channels_line@before'`` -> ``('channels_line', True)``."""
    if impl.endswith(SUFFIX):
        return impl[: -len(SUFFIX)], True
    return impl, False


def load_package(src: str, name: str = "channels_before") -> ModuleType:
    """Import the ``channels`` package found in ``src`` as ``name``, beside
    the ``channels`` this process already has (relative imports inside it
    resolve within the copy)."""
    path = os.path.join(src, "channels", "__init__.py")
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[os.path.dirname(path)])
    if spec is None or spec.loader is None:
        raise ImportError(f"no channels package in {src}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
