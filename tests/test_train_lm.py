"""The character-level Transformer trainer: the pysource split (deterministic, disjoint, by file
hash), the encoding, the unigram baseline, and tiny end-to-end runs whose loss decreases."""

import json

import numpy as np
import pytest

from numkern import _train_lm as lm


def _tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.isa_independent
def test_pysource_split_is_deterministic_and_disjoint():
    train, val = lm.pysource_files()
    assert (train, val) == lm.pysource_files()
    assert train and val and not set(train) & set(val)
    assert all(lm.file_hash(p) < lm.VAL_FRACTION for p in val)
    assert all(lm.file_hash(p) >= lm.VAL_FRACTION for p in train)
    assert [lm.file_hash(p) for p in train] == sorted(lm.file_hash(p) for p in train)  # hash order
    assert not any(part in ("test", "tests", "site-packages") for p in train + val for part in p.split("/"))
    a = lm.load_pysource(50_000, 20_000)
    lm.load_pysource.cache_clear()
    b = lm.load_pysource(50_000, 20_000)
    assert a[2] == b[2] and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[2]["train_chars"] == 50_000 and a[2]["val_chars"] == 20_000


@pytest.mark.isa_independent
def test_pysource_exclusions_and_a_file_keeps_its_split(tmp_path):
    files = {f"pkg/m{i}.py": f"x = {i}\n" * 50 for i in range(40)}
    files.update(
        {
            "test/test_a.py": "t\n",
            "pkg/tests/t.py": "t\n",
            "site-packages/p.py": "p\n",
            "idlelib/idle_test/x.py": "x\n",
            "config-3.11-x86_64-linux-gnu/c.py": "c\n",
            "_sysconfigdata__linux.py": "s\n",
            "pkg/data.txt": "not python\n",
            "__pycache__/m.py": "c\n",
        }
    )
    _tree(tmp_path, files)
    train, val = lm.pysource_files(tmp_path)
    assert sorted(train + val) == sorted(f"pkg/m{i}.py" for i in range(40))
    _tree(tmp_path, {f"other/n{i}.py": "y\n" for i in range(30)})  # more files elsewhere
    train2, val2 = lm.pysource_files(tmp_path)
    assert set(train) <= set(train2) and set(val) <= set(val2)  # placed by its own path only


@pytest.mark.isa_independent
def test_encode_and_unigram():
    ids = lm.encode("a\tb\n\u00e9~ \r")
    assert ids.tolist() == [1 + lm.VOCAB.index("a"), 1, 1 + lm.VOCAB.index("b"), 2, 0, 97, 3, 0]
    assert lm.VOCAB_SIZE == 98
    uniform = np.arange(lm.VOCAB_SIZE, dtype=np.uint8)
    assert lm.unigram_bpc(np.repeat(uniform, 1000), uniform) == pytest.approx(np.log2(98), rel=1e-9)
    w = lm.windows(np.arange(2 * lm.CONTEXT + 5, dtype=np.uint8), offset=3)
    assert w.shape == (2, lm.CONTEXT + 1) and w[1, 0] == 3 + lm.CONTEXT


# The kernels are tested at every ISA level elsewhere; these check the training loop once.
@pytest.mark.isa_independent
@pytest.mark.parametrize("bits,norm", [(32, "l2"), (6, "l1")])
def test_tiny_training_run_loss_decreases(bits, norm):
    lines = []
    r = lm.train_lm(bits, norm, 3, 0, progress=False, out=lines.append, train_chars=30_000, val_chars=8_192)
    val = [h["val_bpc"] for h in r["history"]]
    assert val[2] < val[1] < val[0] < np.log2(lm.VOCAB_SIZE) + 1
    assert r["history"][2]["train_bpc"] < r["history"][0]["train_bpc"]
    assert r["unigram_bpc"] < np.log2(lm.VOCAB_SIZE)
    assert any("unigram" in line for line in lines) and r["steps"] == 3 * (30_000 // lm.CONTEXT // lm.BATCH)


@pytest.mark.isa_independent
def test_train_command_transformer_json(tmp_path, capsys):
    from numkern.__main__ import main

    out = tmp_path / "t.json"
    argv = ["train", "--model", "transformer", "--bits", "4", "--epochs", "1", "--train-chars", "8000"]
    assert main(argv + ["--no-progress", "--json", str(out), "--threads", "1"]) == 0
    r = json.loads(out.read_text())
    assert r["model"] == "transformer" and r["dataset"] == "pysource" and r["bits"] == 4
    assert len(r["history"]) == 1 and r["data"]["train_chars"] == 8000
    assert "bits/char" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="pysource"):
        main(["train", "--model", "transformer", "--dataset", "digits"])
    with pytest.raises(SystemExit, match="pysource"):
        main(["train", "--dataset", "pysource"])
    with pytest.raises(SystemExit, match="transformer only"):
        main(["train", "--threads", "2"])
