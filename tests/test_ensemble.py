"""Loading TTA outputs safely, aligning, averaging and writing submissions (toolkit/ensemble.py, scoring.py)."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import pytest
import torch

from toolkit.competitions.scoring import accuracy, probs_accuracy
from toolkit.core.errors import EnsembleError, ToolkitError, UnsafeOutput
from toolkit.kernel.runtime.ensemble import align, average, check_output, load_tta, write_submission

FILES = ["img_03.png", "img_01.png", "img_02.png", "sub/img_04.png"]
VOCAB = ["normal", "blast", "hispa"]


def make_output(probs, files=FILES, vocab=VOCAB, **extra) -> dict:
    return {"probs": torch.as_tensor(probs, dtype=torch.float32), "files": list(files), "vocab": list(vocab),
            "spec": {"arch": "resnet18"}, "metrics": {"tta_error": 0.1}, **extra}


def random_probs(rows=len(FILES), cols=len(VOCAB), seed=0) -> torch.Tensor:
    return torch.softmax(torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)), dim=1)


def permuted(output: dict, row_order: list[int], col_order: list[int]) -> dict:
    """The same predictions with rows and columns listed in another order."""
    return make_output(output["probs"][row_order][:, col_order], [output["files"][i] for i in row_order],
                       [output["vocab"][j] for j in col_order])


def write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


# -- loading ---------------------------------------------------------------------------------

def test_load_tta_round_trip(tmp_path):
    out = make_output(random_probs(), valid_probs=torch.rand(2, 3), valid_targets=torch.tensor([0, 2]))
    torch.save(out, tmp_path / "tta.pkl")
    loaded = load_tta(tmp_path / "tta.pkl")
    assert torch.equal(loaded["probs"], out["probs"])
    assert loaded["files"] == FILES and loaded["vocab"] == VOCAB and loaded["metrics"] == {"tta_error": 0.1}


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo hi > {self.marker}",))


def test_code_in_a_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "tta.pkl"
    torch.save({**make_output(random_probs()), "payload": Evil(marker)}, path)
    with pytest.raises(UnsafeOutput) as info:
        load_tta(path)
    assert str(path) in info.value.message
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "tta.pkl"
    path.write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(UnsafeOutput) as info:
        load_tta(path)
    assert "tta.pkl" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"PK\x03\x04truncated zip"])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "tta.pkl"
    path.write_bytes(content)
    with pytest.raises(ToolkitError) as info:
        load_tta(path)
    assert "tta.pkl" in str(info.value)


def test_truncated_download_is_refused(tmp_path):
    path = tmp_path / "tta.pkl"
    torch.save(make_output(random_probs()), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ToolkitError):
        load_tta(path)


def test_missing_file(tmp_path):
    with pytest.raises(EnsembleError, match="does not exist"):
        load_tta(tmp_path / "nope" / "tta.pkl")


def test_size_limit(tmp_path):
    path = tmp_path / "tta.pkl"
    torch.save(make_output(random_probs()), path)
    with pytest.raises(UnsafeOutput, match="limit"):
        load_tta(path, max_bytes=100)
    assert load_tta(path, max_bytes=10**7)["files"] == FILES


@pytest.mark.parametrize("data, needle", [
    ([1, 2], "not a dict"),
    ({"probs": torch.zeros(1, 1), "files": ["a"]}, "vocab"),
    (make_output(torch.zeros(4)), "2-D"),
    ({**make_output(torch.zeros(4, 3)), "probs": torch.zeros(4, 3, dtype=torch.int64)}, "float"),
    (make_output(torch.zeros(3, 3)), "4 files"),
    (make_output(torch.zeros(4, 3), files=[1, 2, 3, 4]), "files must be a list of text, not \\[1, 2, 3, 4\\]"),
    (make_output(torch.zeros(4, 3), files=["a", "a", "b", "c"]), "twice"),
    (make_output(torch.zeros(4, 3), vocab=["x", "y", "x"]), "twice"),
])
def test_check_output_refuses_malformed(data, needle):
    with pytest.raises(EnsembleError, match=needle):
        check_output(data, "member")


def test_malformed_saved_output_names_the_file(tmp_path):
    path = tmp_path / "tta.pkl"
    torch.save({"probs": torch.zeros(2, 2)}, path)
    with pytest.raises(EnsembleError, match="tta.pkl"):
        load_tta(path)


# -- aligning and averaging ------------------------------------------------------------------

def hand_aligned(output: dict) -> torch.Tensor:
    """Rows by sorted file name, columns by sorted class name, element by element."""
    files, vocab = sorted(output["files"]), sorted(output["vocab"])
    result = torch.zeros(len(files), len(vocab))
    for i, f in enumerate(files):
        for j, c in enumerate(vocab):
            result[i, j] = output["probs"][output["files"].index(f), output["vocab"].index(c)]
    return result


def test_align_orders_by_name():
    out = make_output(random_probs())
    files, vocab, aligned = align([out], ["a"])
    assert files == sorted(FILES) and vocab == sorted(VOCAB)
    assert torch.equal(aligned[0], hand_aligned(out))


def test_average_matches_hand_alignment_when_rows_and_columns_are_permuted():
    a = make_output(random_probs(seed=1))
    b = permuted(make_output(random_probs(seed=2)), [3, 0, 2, 1], [2, 0, 1])
    c = permuted(make_output(random_probs(seed=3)), [1, 3, 0, 2], [1, 2, 0])
    files, vocab, mean = average([a, b, c], ["a", "b", "c"])
    expected = (hand_aligned(a) + hand_aligned(b) + hand_aligned(c)) / 3
    assert files == sorted(FILES) and vocab == sorted(VOCAB)
    assert torch.allclose(mean, expected, atol=1e-6)
    assert torch.allclose(mean.sum(dim=1), torch.ones(len(FILES)), atol=1e-5)


def test_a_permuted_copy_averages_to_itself():
    a = make_output(random_probs(seed=4))
    b = permuted(a, [2, 3, 1, 0], [1, 2, 0])
    _, _, mean = average([a, b], ["a", "b"])
    assert torch.allclose(mean, hand_aligned(a), atol=1e-7)


def test_weights():
    a = make_output(random_probs(seed=5))
    b = permuted(make_output(random_probs(seed=6)), [1, 0, 3, 2], [0, 2, 1])
    _, _, mean = average([a, b], ["a", "b"], [1.0, 3.0])
    assert torch.allclose(mean, (hand_aligned(a) + 3 * hand_aligned(b)) / 4, atol=1e-6)
    _, _, only_b = average([a, b], ["a", "b"], [0.0, 2.0])
    assert torch.allclose(only_b, hand_aligned(b), atol=1e-7)


@pytest.mark.parametrize("weights", [[1.0], [1.0, 1.0, 1.0], [1.0, -1.0], [0.0, 0.0]])
def test_bad_weights(weights):
    a, b = make_output(random_probs(seed=7)), make_output(random_probs(seed=8))
    with pytest.raises(EnsembleError, match="weights"):
        average([a, b], ["a", "b"], weights)


def test_different_test_files_are_refused_clearly():
    a = make_output(random_probs())
    b = make_output(random_probs(), files=FILES[:3] + ["other.png"])
    with pytest.raises(EnsembleError) as info:
        average([a, b], ["run-a", "run-b"])
    message = info.value.message
    assert "test files" in message and "sub/img_04.png" in message and "other.png" in message
    assert "run-a" in message and "run-b" in message


def test_fewer_test_files_are_refused():
    a = make_output(random_probs())
    b = make_output(random_probs(rows=3), files=FILES[:3])
    with pytest.raises(EnsembleError, match="1 only in run-a"):
        average([a, b], ["run-a", "run-b"])


def test_different_vocabularies_are_refused_clearly():
    a = make_output(random_probs())
    b = make_output(random_probs(), vocab=["normal", "blast", "tungro"])
    with pytest.raises(EnsembleError) as info:
        average([a, b], ["run-a", "run-b"])
    assert "classes" in info.value.message and "hispa" in info.value.message and "tungro" in info.value.message


def test_no_members():
    with pytest.raises(EnsembleError, match="no ensemble members"):
        average([], [])


# -- submission ------------------------------------------------------------------------------

def test_write_submission_follows_sample_order(tmp_path):
    probs = torch.tensor([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]])
    files, vocab = ["a.png", "b.png", "c.png", "d.png"], ["blast", "hispa", "normal"]
    sample = write_csv(tmp_path / "sample_submission.csv",
                       [["image_id", "label"], ["d.png", "x"], ["b.png", "x"], ["c.png", "x"], ["a.png", "x"]])
    out = tmp_path / "submission.csv"
    assert write_submission(files, vocab, probs, sample, out) == 4
    assert read_csv(out) == [["image_id", "label"], ["d.png", "hispa"], ["b.png", "blast"], ["c.png", "normal"],
                             ["a.png", "hispa"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample_submission.csv", "submission.csv"]


def test_write_submission_from_an_average(tmp_path):
    a = make_output(random_probs(seed=9))
    b = permuted(make_output(random_probs(seed=10)), [3, 2, 1, 0], [2, 1, 0])
    files, vocab, mean = average([a, b], ["a", "b"])
    sample = write_csv(tmp_path / "s.csv", [["image_id", "label"], *[[f, "normal"] for f in FILES]])
    write_submission(files, vocab, mean, sample, tmp_path / "submission.csv")
    expected = (hand_aligned(a) + hand_aligned(b)) / 2
    want = {f: sorted(VOCAB)[int(expected[sorted(FILES).index(f)].argmax())] for f in FILES}
    assert read_csv(tmp_path / "submission.csv")[1:] == [[f, want[f]] for f in FILES]


@pytest.mark.parametrize("ids, needle", [
    (["a.png", "b.png", "zzz.png"], "zzz.png"),  # an id with no prediction
    (["a.png", "b.png"], "1 predictions without an id"),  # a prediction with no id
    (["a.png", "b.png", "c.png", "c.png"], "0 predictions without an id, 1 ids listed twice"),
])
def test_write_submission_refuses_mismatched_ids(tmp_path, ids, needle):
    sample = write_csv(tmp_path / "sample_submission.csv", [["image_id", "label"], *[[i, "x"] for i in ids]])
    out = tmp_path / "submission.csv"
    with pytest.raises(EnsembleError, match=needle):
        write_submission(["a.png", "b.png", "c.png"], ["x", "y"], torch.rand(3, 2), sample, out)
    assert not out.exists()


def test_write_submission_needs_a_header(tmp_path):
    sample = write_csv(tmp_path / "s.csv", [])
    with pytest.raises(EnsembleError, match="header"):
        write_submission(["a"], ["x"], torch.ones(1, 1), sample, tmp_path / "out.csv")


# -- scoring ---------------------------------------------------------------------------------

def test_accuracy(tmp_path):
    solution = write_csv(tmp_path / "solution.csv", [["image_id", "label"], ["a", "x"], ["b", "y"], ["c", "x"],
                                                     ["d", "y"]])
    submission = write_csv(tmp_path / "sub.csv", [["image_id", "label"], ["d", "y"], ["c", "y"], ["b", "y"],
                                                  ["a", "x"]])
    assert accuracy(submission, solution) == pytest.approx(0.75)
    partial = write_csv(tmp_path / "partial.csv", [["image_id", "label"], ["a", "x"], ["zz", "y"]])
    with pytest.raises(EnsembleError, match="exactly the test ids"):
        accuracy(partial, solution)


def test_probs_accuracy(tmp_path):
    solution = write_csv(tmp_path / "solution.csv", [["image_id", "label"], ["a", "x"], ["b", "y"], ["c", "x"]])
    probs = torch.tensor([[0.8, 0.2], [0.1, 0.9], [0.6, 0.4]])  # rows b, c, a; columns y, x: a is wrong
    assert probs_accuracy(["b", "c", "a"], ["y", "x"], probs, solution) == pytest.approx(2 / 3)
