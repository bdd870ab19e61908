"""The public API is fully annotated (the package ships ``py.typed``) and reports one version."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect

import pytest

import numkern

NAMESPACES = ("numkern", "numkern.quant", "numkern.sketch", "numkern.dp", "numkern.nn", "numkern.dask")


def _public_callables():
    for namespace in NAMESPACES:
        if namespace == "numkern.dask" and importlib.util.find_spec("dask") is None:
            continue
        module = importlib.import_module(namespace)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                if issubclass(obj, BaseException):
                    continue
                for attr, member in inspect.getmembers(obj):
                    if attr.startswith("_") and attr not in ("__init__", "__call__", "__matmul__"):
                        continue
                    fn = inspect.unwrap(member) if callable(member) else None
                    if inspect.isfunction(fn) and fn.__module__.startswith("numkern"):
                        yield f"{namespace}.{name}.{attr}", fn
            elif callable(obj) and not inspect.ismodule(obj):
                yield f"{namespace}.{name}", obj


@pytest.mark.isa_independent
def test_every_public_function_and_method_is_annotated():
    missing = []
    for qualname, fn in _public_callables():
        sig = inspect.signature(fn)
        params = [
            p.name for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty and p.name != "self"
        ]
        if sig.return_annotation is inspect.Signature.empty:
            params.append("return")
        if params:
            missing.append(f"{qualname}: {params}")
    assert not missing, "unannotated:\n" + "\n".join(missing)


@pytest.mark.isa_independent
def test_version_comes_from_the_distribution_metadata():
    try:
        expected = importlib.metadata.version("numkern")
    except importlib.metadata.PackageNotFoundError:
        expected = "0+unknown"
    assert numkern.__version__ == expected
