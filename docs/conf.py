"""Sphinx configuration for the io-channels documentation.

The site builds offline: no intersphinx (it would fetch inventories at build
time), and the one diagram is drawn by Graphviz's ``dot`` from text in the
page. ``make docs`` builds it with warnings as errors and nitpicky
references.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import channels  # noqa: E402

_MODULES = [module.name for module in pkgutil.iter_modules(channels.__path__) if not module.name.startswith("__")]

project = "io-channels"
author = "The io-channels maintainers"
copyright = "the io-channels maintainers"  # noqa: A001
release = channels.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
]

#: The repository, for links to its files (examples, the changelog).
REPOSITORY = "https://github.com/io-channels/io-channels"

exclude_patterns = ["_build"]
nitpicky = True
default_role = "code"
highlight_language = "python"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
# The standard library's names have no page here: its inventory would have
# to be fetched at build time (intersphinx), and the build must work
# offline. Only names of standard modules are excused; a reference to one of
# this package's names that does not resolve is an error.
_STDLIB = "|".join(sorted(sys.stdlib_module_names))
nitpick_ignore_regex = [
    (r"py:(class|mod|func|meth|attr|data|exc|obj)", rf"({_STDLIB})(\..*)?"),
    ("py:class", r"(int|float|str|bytes|bytearray|memoryview|bool|object|None|BaseException|Exception)"),
]

graphviz_output_format = "svg"

html_theme = "furo"
html_title = f"io-channels {release}"
html_static_path: list[str] = []
html_theme_options = {
    "source_repository": REPOSITORY + "/",
    "source_branch": "main",
    "source_directory": "docs/",
}


def _resolve_in_package(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """Resolve a short name of this package that the docstring's own module
    does not define.

    Docstrings name ``EndpointClosedException`` or ``abort`` the way a reader
    of the module does; the class or function lives in another module, or on
    a base class. Try, in order: the public name ``channels.NAME``, then the
    public name with a module dropped, the name in each of the package's
    modules, then the same member on each base class of the class whose docstring it is.
    Anything else stays unresolved, and nitpicky mode reports it.
    """
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip("~.")
    parts = target.split(".")
    # channels.poller.Poller.add_server is documented as channels.Poller.add_server.
    candidates = [".".join(["channels", *parts[i:]]) for i in range(len(parts))]
    candidates += [f"channels.{name}.{target}" for name in _MODULES]
    owner = node.get("py:class")
    module = node.get("py:module")
    if owner and module:
        # Imported here: an incremental build may not have read that page.
        cls = getattr(importlib.import_module(module), owner.split(".")[0], None)
        for base in getattr(cls, "__mro__", ())[1:]:
            if base.__module__.startswith("channels"):
                candidates.append(f"channels.{base.__name__}.{target}")
    for candidate in candidates:
        found = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], candidate, node, contnode)
        if found is not None:
            return found
    return None


class SkipNote(Directive):
    """``.. skip:: REASON``, just before a code block that the tests do not run.

    The test of the docs reads it to leave that block out; the reader sees
    it as a line saying why, so that a block that was not checked never
    passes for one that was.
    """

    required_arguments = 1
    final_argument_whitespace = True

    def run(self):  # type: ignore[no-untyped-def]
        text = f"Not run by the test suite: {self.arguments[0]}."
        return [nodes.paragraph("", "", nodes.emphasis(text=text), classes=["skip-note"])]


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", _resolve_in_package)
    app.add_directive("skip", SkipNote)
