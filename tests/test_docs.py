"""The documentation builds, and every code block in it and in the README runs.

Each page's blocks run in order, each in a fresh child process, in one
temporary folder per page: a block whose caption is a file name (``upper.py``)
is written there under that name, for the later blocks of the page to run or
import, and is not run by itself. A block that cannot run follows a comment
saying why (``.. skip:: REASON`` in a page, which the site shows the reader,
``<!-- skip: REASON -->`` in the README); such blocks are the exception. A
``literalinclude`` of an example with a file name as caption is written to
the folder likewise, for a later block to run with arguments.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
REPOSITORY = "https://github.com/io-channels/io-channels"

#: Seconds one block may run before it counts as hung.
BLOCK_TIMEOUT = 60
#: Languages of blocks that are run, and of blocks that show text (output, a file).
RUN = {"python", "sh"}
SHOWN = {"text", "ini"}

_RST_BLOCK = re.compile(r"^(?P<indent> *)\.\. (?:code-block|literalinclude):: *(?P<arg>\S*) *$")
_RST_SKIP = re.compile(r"^ *\.\. skip:: (?P<reason>.+)$")
_MD_FENCE = re.compile(r"^```(?P<lang>\w*) *$")
_MD_SKIP = re.compile(r"^<!-- skip: (?P<reason>.+) -->$")


@dataclass
class Block:
    """One code block: where it is, its language, its text, and why it is not run (if so)."""

    where: str
    language: str
    code: str
    caption: str = ""
    skip: str = ""


def _rst_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    for number, line in enumerate(lines):
        match = _RST_BLOCK.match(line)
        if not match:
            continue
        where = f"{page.relative_to(ROOT)}:{number + 1}"
        skip = _RST_SKIP.match(lines[number - 2] if number >= 2 and not lines[number - 1].strip() else "")
        indent = len(match["indent"])
        options: dict[str, str] = {}
        body: list[str] = []
        rest = iter(lines[number + 1 :])
        for following in rest:
            option = re.match(r"^ +:(\w[\w-]*):(.*)$", following)
            if not option:
                break
            options[option[1]] = option[2].strip()
        for following in rest:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        if "literalinclude" in line:
            included = (page.parent / match["arg"]).resolve()
            language = options.get("language", "python")
            code = included.read_text()
            caption = options.get("caption", "")
        else:
            language = match["arg"]
            code = _dedent(body)
            caption = options.get("caption", "")
        blocks.append(Block(where, language, code, caption, skip["reason"] if skip else ""))
    return blocks


def _dedent(body: list[str]) -> str:
    text = "\n".join(body).strip("\n")
    indents = [len(line) - len(line.lstrip()) for line in text.splitlines() if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in text.splitlines()) + "\n"


def _markdown_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    number = 0
    while number < len(lines):
        match = _MD_FENCE.match(lines[number])
        if not match:
            number += 1
            continue
        end = lines.index("```", number + 1)
        skip = _MD_SKIP.match(lines[number - 1]) if number else None
        code = "\n".join(lines[number + 1 : end]) + "\n"
        blocks.append(Block(f"{page.name}:{number + 1}", match["lang"], code, skip=skip["reason"] if skip else ""))
        number = end + 1
    return blocks


PAGES = sorted(DOCS.rglob("*.rst"))


def _blocks(page: Path) -> list[Block]:
    return _markdown_blocks(page) if page.suffix == ".md" else _rst_blocks(page)


def _run(block: Block, folder: Path, number: int) -> None:
    if block.caption and "." in block.caption and " " not in block.caption:
        # A file of the example: later blocks run or import it.
        (folder / block.caption).write_text(block.code)
        return
    script = folder / f"block_{number}.{'py' if block.language == 'python' else 'sh'}"
    script.write_text(block.code)
    command = [sys.executable, script.name] if block.language == "python" else ["sh", "-eu", script.name]
    # The package's command and this interpreter come first on PATH, as after
    # `pip install io-channels` in a virtual environment.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # A session of its own, so that a block that hangs is stopped with every
    # process it started (a server in the background, a child).
    with subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    ) as block_process:
        try:
            stdout, stderr = block_process.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired as timeout:
            os.killpg(block_process.pid, signal.SIGKILL)
            block_process.communicate()
            raise AssertionError(f"{block.where}: still running after {BLOCK_TIMEOUT}s") from timeout
    assert block_process.returncode == 0, (
        f"{block.where} exited {block_process.returncode}\n--- stdout\n{stdout.decode()}\n--- stderr\n{stderr.decode()}"
    )


@pytest.mark.timeout(BLOCK_TIMEOUT * 12)
@pytest.mark.parametrize("page", [*PAGES, README], ids=lambda page: str(page.relative_to(ROOT)))
def test_every_code_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    blocks = _blocks(page)
    for number, block in enumerate(blocks):
        kind = block.language or "plain"
        assert block.language in RUN | SHOWN, f"{block.where}: a {kind} block is neither run nor shown as text"
        if block.language in RUN and not block.skip:
            _run(block, tmp_path, number)


def test_a_file_written_by_a_page_is_used_by_a_later_block() -> None:
    unused = []
    for page in PAGES:
        blocks = _blocks(page)
        for number, block in enumerate(blocks):
            name = block.caption
            if name and "." in name and " " not in name:
                later = "".join(other.code for other in blocks[number + 1 :])
                if Path(name).stem not in later:
                    unused.append(f"{block.where}: {name}")
    assert not unused, f"files that no later block runs or imports: {unused}"


def test_blocks_not_run_are_few_and_say_why() -> None:
    skipped = [block for page in [*PAGES, README] for block in _blocks(page) if block.skip]
    run = [block for page in [*PAGES, README] for block in _blocks(page) if block.language in RUN]
    assert all(len(block.skip) > 10 for block in skipped)
    assert len(skipped) * 5 < len(run), [block.where for block in skipped]


def test_links_into_the_repository_name_files_that_exist() -> None:
    pattern = re.compile(re.escape(REPOSITORY) + r"/(?:blob|tree|raw)/main/([^\s)>`\"']+)")
    missing = []
    for page in [*PAGES, README, DOCS / "conf.py"]:
        for path in pattern.findall(page.read_text()):
            if not (ROOT / path.split("#")[0]).exists():
                missing.append(f"{page.name}: {path}")
    assert not missing, missing


def test_readme_is_a_first_screen_with_absolute_links() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < 150
    assert "pip install io-channels" in text
    # The package index shows the README without the repository around it.
    relative = re.findall(r"\]\((?!https?://|#)([^)]+)\)", text)
    assert not relative, relative


@pytest.mark.timeout(600)
def test_the_site_builds_with_warnings_as_errors_and_nitpicky_references(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
    if shutil.which("dot") is None:
        message = "Graphviz's dot draws the poll-turn diagram: install graphviz (`make sysdeps` does as root)"
        if os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", "-d"]
    command += [str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=540, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "html" / "index.html").exists()
    assert (tmp_path / "html" / "tutorial.html").exists()
