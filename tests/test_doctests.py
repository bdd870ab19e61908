"""The examples of the documentation run as tests, on every ISA level (the conftest's ``isa`` fixture).

Two sources: the docstrings of every module of the installed ``numkern`` package (the numpydoc
``Examples`` sections), and the ``>>>`` examples of the Markdown pages under ``docs/``. Outputs are
printed rounded, so they do not depend on the ISA level. A third test checks that every public name
has an ``Examples`` section at all.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import pathlib
import pkgutil
import re

import numpy as np
import pytest

import numkern

ROOT = pathlib.Path(__file__).resolve().parent.parent
PUBLIC_NAMESPACES = ("numkern", "numkern.quant", "numkern.sketch", "numkern.dp", "numkern.nn", "numkern.dask")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
HAVE_DASK = importlib.util.find_spec("dask") is not None


def _modules() -> list[str]:
    names = ["numkern"]
    for info in pkgutil.walk_packages(numkern.__path__, "numkern."):
        if info.name.startswith(("numkern.bench", "numkern.__main__")):
            continue  # the benchmark command's internals import the optional peers
        if info.name.startswith("numkern.dask") and not HAVE_DASK:
            continue
        names.append(info.name)
    return names


def _docstring_tests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in _modules():
        module = importlib.import_module(name)
        tests += [t for t in finder.find(module, name) if t.examples]
    return sorted(tests, key=lambda t: t.name)


class _MarkdownParser(doctest.DocTestParser):
    """Reads a Markdown page: a closing code fence ends an example's expected output."""

    def parse(self, string, name="<string>"):
        return super().parse(re.sub(r"(?m)^```.*$", "", string), name)


def _page_tests() -> list[doctest.DocTest]:
    parser = _MarkdownParser()
    tests = []
    for path in sorted((ROOT / "docs").rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if ">>>" not in text or ("import dask" in text and not HAVE_DASK):
            continue
        name = str(path.relative_to(ROOT))
        tests.append(parser.get_doctest(text, {"np": np, "numkern": numkern}, name, str(path), 0))
    return tests


DOCSTRING_TESTS = _docstring_tests()
PAGE_TESTS = _page_tests() if (ROOT / "docs").is_dir() else []


def _run(test: doctest.DocTest) -> None:
    test = doctest.DocTest(test.examples, dict(test.globs), test.name, test.filename, test.lineno, test.docstring)
    test.globs.setdefault("np", np)
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with np.printoptions():  # an example that changes the print options leaves the others alone
        result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)
    assert result.attempted == len(test.examples)


@pytest.mark.parametrize("test", DOCSTRING_TESTS, ids=[t.name for t in DOCSTRING_TESTS])
def test_docstring_examples(test: doctest.DocTest, isa: str | None) -> None:
    _run(test)


@pytest.mark.parametrize("test", PAGE_TESTS, ids=[t.name for t in PAGE_TESTS])
def test_documentation_page_examples(test: doctest.DocTest, isa: str | None) -> None:
    _run(test)


def _public_objects():
    for namespace in PUBLIC_NAMESPACES:
        if namespace == "numkern.dask" and not HAVE_DASK:
            continue
        module = importlib.import_module(namespace)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue  # subpackages and constants (documented by a comment)
            yield f"{namespace}.{name}", obj


@pytest.mark.isa_independent
def test_every_public_function_and_class_has_an_example() -> None:
    missing = [name for name, obj in _public_objects() if ">>>" not in (inspect.getdoc(obj) or "")]
    assert not missing, f"no Examples section with a doctest: {missing}"
    collected = {t.name for t in DOCSTRING_TESTS}
    not_run = [name for name, obj in _public_objects() if f"{obj.__module__}.{obj.__qualname__}" not in collected]
    assert not not_run, f"examples not collected (the object's module must define it): {not_run}"


@pytest.mark.isa_independent
def test_every_public_name_is_in_the_api_reference() -> None:
    api = ROOT / "docs" / "api"
    if not api.is_dir():
        pytest.skip("no docs/ next to the tests")
    for namespace in PUBLIC_NAMESPACES:
        if namespace == "numkern.dask" and not HAVE_DASK:
            continue
        text = (api / f"{namespace}.rst").read_text(encoding="utf-8")
        listed = set(re.findall(r"(?m)^   (\w+)$", text))
        missing = set(importlib.import_module(namespace).__all__) - listed - {"dp", "quant", "sketch"}
        assert not missing, f"{namespace}: not in docs/api/{namespace}.rst: {sorted(missing)}"
