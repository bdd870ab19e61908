"""Sphinx configuration for the numkern documentation (built by tools/build_docs.sh with -W)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numkern

ROOT = Path(__file__).resolve().parent.parent

project = "numkern"
author = "the numkern developers"
copyright = f"2026, {author}"
release = numkern.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "bench/*.json", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# No network during the build: no intersphinx inventories, and MathJax is only referenced (the
# pages load it in the reader's browser), never fetched here.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"numkern {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": [], "benchmarks": [], "getting-started": []}
html_show_sourcelink = False


def _generate_benchmarks(app) -> None:
    """Writes docs/bench/_generated.md (tables and plots) from the committed bench JSON files."""
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "tools" / "bench_table.py")
    assert spec is not None and spec.loader is not None
    bench_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_table)
    out = Path(app.srcdir) / "bench"
    bench_table.write_docs_page(
        sorted(out.glob("*.json")), out / "_generated.md", plot_dir=Path(app.srcdir) / "_static" / "bench"
    )


def setup(app):
    app.connect("builder-inited", _generate_benchmarks)
    # Keep the build independent of the caller's thread settings.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.dont_write_bytecode = True
