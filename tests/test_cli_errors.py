"""One error path (issue 15): every expected failure of every command is one
``ssmlab <cmd>: error: ...`` line and exit code 2, never a traceback."""

from __future__ import annotations

import gzip

import filelock
import pytest
import torch

from ssmlab.cli import main
from ssmlab.data import DataFormatError, load_dataset
from ssmlab.data.readers import read_amazon_reviews_json, read_table
from ssmlab.train.checkpoint import atomic_save, load_checkpoint

HEADER = "user_id,item_id,timestamp\n"
DENSE = "".join(f"{u},{i},{100 * u + i}\n" for u in range(1, 7) for i in range(1, 7))


@pytest.fixture(autouse=True)
def tiny_registered(register_model, monkeypatch, tmp_path):
    register_model("tinyerr")
    monkeypatch.setenv("SSMLAB_CACHE_DIR", str(tmp_path / "cache"))


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_error(result, command: str, *words: str) -> None:
    code, out, err = result
    assert code == 2 and out == "", err
    assert err.startswith(f"ssmlab {command}: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err


QUICK = ["--model", "tinyerr", "--device", "cpu", "--set", "train.epochs=1",
         "--set", "train.steps_per_epoch=2", "--set", "train.progress=false"]  # fmt: skip


@pytest.fixture
def run(tmp_path, capsys):
    """A finished tiny run on toy: its folder."""
    folder = tmp_path / "run"
    assert cli(capsys, "train", *QUICK, "--output", folder)[0] == 0
    return folder


# -- bad data: data info, train and eval share the path ---------------------------------------
GZ = gzip.compress((HEADER + DENSE).encode())
BAD_FILES = {
    "latin1.csv": ((HEADER + DENSE + "7,café,5\n").encode("latin-1"), "line 38: byte 0xe9"),
    "truncated.csv.gz": (GZ[: len(GZ) // 2], "corrupt or truncated gzip"),
    "corrupt.csv.gz": (GZ[:12] + b"\xff" * 8 + GZ[20:], "corrupt or truncated gzip"),
    "few.csv": ((HEADER + "1,2,3\n").encode(), "no interaction is left after 5-core"),
    "nanid.csv": ((HEADER + DENSE + "NaN,1,5\n").encode(), "line 38: malformed or truncated"),
    "nullitem.csv": ((HEADER + DENSE + "1,null,5\n").encode(), "line 38"),
    "future.csv": ((HEADER + DENSE + "1,1,1e20\n").encode(), "timestamp 1e20 is beyond int64"),
    "int64.csv": ((HEADER + DENSE + f"1,1,{2**63}\n").encode(), f"timestamp {2**63} is beyond"),
    "ragged.csv": ((HEADER + DENSE + "1,2,3,4,5\n").encode(), "malformed line"),
    "empty.csv": (b"", "is empty"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_data_is_one_error_line_for_every_command(tmp_path, capsys, name):
    content, words = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    assert_error(cli(capsys, "data", "info", f"csv:{path}"), "data info", words)
    assert_error(cli(capsys, "train", *QUICK, "--data", f"csv:{path}"), "train", words)


def test_unknown_dataset_and_missing_file(tmp_path, capsys):
    assert_error(cli(capsys, "data", "info", "nosuch"), "data info", "unknown dataset 'nosuch'")
    missing = tmp_path / "none.csv"
    assert_error(cli(capsys, "data", "info", f"csv:{missing}"), "data info", "not found")


def test_csv_column_options_on_the_cli(tmp_path, capsys):
    path = tmp_path / "plain.tsv"
    path.write_text("".join(f"{u};{i};5;{100 * u + i}000\n" for u in range(1, 7) for i in range(9)))
    code, out, err = cli(
        capsys, "data", "info", f"csv:{path}", "--no-header", "--sep", ";",
        "--columns", "0,1,3", "--time-unit", "ms",
    )  # fmt: skip
    assert code == 0, err
    assert "6 users, 9 items, 54 interactions" in out
    assert_error(cli(capsys, "data", "info", f"csv:{path}"), "data info", "missing column")
    assert_error(cli(capsys, "data", "info", "toy", "--sep", ";"), "data info", "are for csv:PATH")
    assert_error(
        cli(capsys, "data", "info", f"csv:{path}", "--columns", "a,b"), "data info", "3 names"
    )


def test_duplicate_rows_give_a_sparsity_in_0_1(tmp_path, capsys):
    path = tmp_path / "dups.csv"
    path.write_text(HEADER + DENSE * 3)
    code, out, err = cli(capsys, "data", "info", f"csv:{path}")
    assert code == 0 and "sparsity 0.00%" in out, err


# -- readers: smaller defects ---------------------------------------------------------------------
def test_ids_beyond_int64_stay_exact(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(HEADER + f"{2**63},1,5\n{2**64 - 1},2,6\n")
    table = read_table(path, display="big.csv", sep=",", header=True,
                       columns=("user_id", "item_id", "timestamp"))  # fmt: skip
    assert table["user"].tolist() == [str(2**63), str(2**64 - 1)]


@pytest.mark.parametrize(
    "line, words",
    [
        ('{"reviewerID": ["a"], "asin": "x", "unixReviewTime": 5}', "reviewerID must be"),
        ('{"reviewerID": "a", "asin": {"k": 1}, "unixReviewTime": 5}', "asin must be"),
        ('{"reviewerID": "a", "asin": "x", "unixReviewTime": [5]}', "not a finite number"),
        ('{"reviewerID": "a", "asin": "x", "unixReviewTime": true}', "not a finite number"),
        ('{"reviewerID": "a", "asin": "x", "unixReviewTime": 1e400}', "not a finite number"),
        ('{"reviewerID": "a", "asin": "x", "unixReviewTime": 1e30}', "beyond int64"),
        ("[" * 100_000, "not an object"),
        ("(" * 300 + ")" * 300, "not an object"),
        ("[1, 2]", "not an object"),
        ("{'reviewerID': 'a', 'asin': 'x'}", "not an object with keys"),
        ("{1: 2, 'x': }", "not an object"),
    ],
)
def test_crafted_json_lines_are_format_errors(line, words):
    good = '{"reviewerID": "u", "asin": "i", "unixReviewTime": 1}\n'
    with pytest.raises(DataFormatError, match=words):
        read_amazon_reviews_json((good + line + "\n").encode(), "reviews.json")


def test_json_reader_gzip_and_utf8(tmp_path):
    good = b'{"reviewerID": "u", "asin": "i", "unixReviewTime": 1}\n'
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip"):
        read_amazon_reviews_json(gzip.compress(good * 50)[:-9], "r.json.gz")
    with pytest.raises(DataFormatError, match=r"line 2: byte 0xff is not UTF-8"):
        read_amazon_reviews_json(good + b'{"reviewerID": "\xff"}\n', "r.json")


def test_empty_5core_is_a_data_format_error(tmp_path):
    path = tmp_path / "few.csv"
    path.write_text(HEADER + "1,2,3\n")
    with pytest.raises(DataFormatError, match="no interaction is left"):
        load_dataset(f"csv:{path}", cache_dir=tmp_path / "c")


# -- devices, checkpoints, locks ------------------------------------------------------------------
@pytest.mark.parametrize("device", ["bogus", "cuda:x", "meta"])
def test_bad_device(capsys, run, device):
    assert_error(cli(capsys, "train", *QUICK, "--device", device), "train", f"{device!r}")
    assert_error(cli(capsys, "eval", run, "--device", device), "eval", f"{device!r}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu(capsys, run):
    assert_error(cli(capsys, "train", *QUICK, "--device", "cuda"), "train", "sees no GPU")
    assert_error(cli(capsys, "eval", run, "--device", "cuda"), "eval", "sees no GPU")


def test_checkpoint_whose_config_does_not_fit_its_weights(capsys, run):
    state = load_checkpoint(run / "best.pt")
    state["config"]["model"]["d_model"] = 16
    atomic_save(state, run / "best.pt")
    assert_error(cli(capsys, "eval", run), "eval", "do not fit the tinyerr model", "size mismatch")


def test_eval_refuses_non_finite_weights(capsys, run):
    state = load_checkpoint(run / "best.pt")
    state["model"]["item_embedding.weight"][2] = float("nan")
    atomic_save(state, run / "best.pt")
    assert_error(cli(capsys, "eval", run), "eval", "not finite", "item_embedding.weight")


def test_eval_refuses_non_finite_scores(capsys, run):
    state = load_checkpoint(run / "best.pt")
    state["model"]["item_embedding.weight"].fill_(3e38)  # finite weights, scores overflow
    atomic_save(state, run / "best.pt")
    assert_error(cli(capsys, "eval", run), "eval", "scores are not finite")


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "busy"
    folder.mkdir()
    with filelock.FileLock(folder / ".lock", timeout=0):  # another process is training there
        assert_error(
            cli(capsys, "train", *QUICK, "--output", folder), "train", "another ssmlab process"
        )
    assert not (folder / "last.pt").exists()
    assert cli(capsys, "train", *QUICK, "--output", folder)[0] == 0  # released: it runs


def test_csv_options_for_train_and_eval(tmp_path, capsys):
    path = tmp_path / "plain.txt"
    path.write_text("".join(f"{u};{i};5;{100 * u + i}000\n" for u in range(1, 7) for i in range(9)))
    options = ["--set", "data.csv_sep=;", "--set", "data.csv_header=false",
               "--set", "data.csv_columns=0,1,3", "--set", "data.csv_time_unit=ms"]  # fmt: skip
    folder = tmp_path / "run"
    code, out, err = cli(capsys, "train", *QUICK, "--data", f"csv:{path}", *options,
                         "--output", folder)  # fmt: skip
    assert code == 0 and len(out.splitlines()) == 1, err
    assert cli(capsys, "eval", folder)[0] == 0  # the checkpoint's config reads it the same way
    assert_error(cli(capsys, "train", *QUICK, "--data", f"csv:{path}"), "train", "data.csv_columns")


def test_float_like_ids_never_rewrite_integer_ids(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(HEADER + "1,7,5\n1.5,inf,6\n")
    table = read_table(path, display="mixed.csv", sep=",", header=True,
                       columns=("user_id", "item_id", "timestamp"))  # fmt: skip
    assert table["user"].tolist() == ["1", "1.5"] and table["item"].tolist() == ["7", "inf"]
    path.write_text(HEADER + "1,7,5\n12,8,6.75\n")
    table = read_table(path, display="ints.csv", sep=",", header=True,
                       columns=("user_id", "item_id", "timestamp"))  # fmt: skip
    assert table["user"].dtype == "int64" and table["user"].tolist() == [1, 12]
    assert table["timestamp"].tolist() == [5, 6]
