"""Datasets over the real kaggle client and the emulator, no kernel run: a laid-out folder uploaded as a new private
dataset (each file a blob PUT to its signed URL, a subfolder as one zip), the same content never uploaded twice,
changed content as a new version, and Kaggle's refusals (its size limit, a private quota that drops a dataset
without a word, a kernel attaching a dataset it does not know) in one line."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from emulator import KEY, USER

from toolkit.core.config import load_config
from toolkit.core.errors import BackendError, DatasetRefused
from toolkit.kernel.datasets import dataset_metadata, write_dataset
from toolkit.project import Project
from toolkit.runs import datasets
from toolkit.runs.datasets import publish

POLL = {"TOOLKIT_POLL_INITIAL_S": "0.05", "TOOLKIT_POLL_MAX_S": "0.1"}
SLUG = "timm-weights-resnet18"


@pytest.fixture
def kaggle(start_emulator, tmp_path):
    emu = start_emulator(env=POLL)
    return emu, Project(load_config(backend="kaggle"))


def _lay_out(project: Project, tmp_path, content: bytes, slug: str = SLUG, extra: dict | None = None):
    (tmp_path / "w.pth").write_bytes(content)
    files = {"resnet18.pth": tmp_path / "w.pth", **(extra or {})}
    root = project.config.resolve(project.config.datasets_root)
    return write_dataset(root / slug, dataset_metadata(USER, slug, "unknown", "weights"), files)


def _uploads(emu) -> list[str]:
    return [r.rpc for r in emu.requests if r.rpc in ("StartBlobUpload", "upload", "CreateDataset",
                                                     "CreateDatasetVersion")]


def test_a_dataset_is_uploaded_private_once_and_a_change_as_a_new_version(kaggle, tmp_path):
    emu, project = kaggle
    (tmp_path / "a.txt").write_text("member")
    folder = _lay_out(project, tmp_path, b"w" * 1000, extra={"member/a.txt": tmp_path / "a.txt"})
    first = publish(project, folder, lambda text: None)
    assert first.uploaded and first.upload.version == 1 and first.ref == f"{USER}/{SLUG}"
    (create,) = emu.calls("CreateDataset")
    assert create.body["isPrivate"] is True and create.body["licenseName"] == "unknown"
    uploaded = emu.dataset_bytes(USER, SLUG)
    assert uploaded["resnet18.pth"] == b"w" * 1000  # a subfolder travels as one zip, unpacked where mounted
    assert zipfile.ZipFile(io.BytesIO(uploaded["member.zip"])).read("a.txt") == b"member"
    assert (emu.datasets_root / SLUG / "member" / "a.txt").read_text() == "member"
    for request in emu.requests:  # the key travels only in the Authorization header, never in a file or a body
        sent = request.body if isinstance(request.body, bytes) else json.dumps(request.body).encode()
        assert KEY.encode() not in sent

    before = len(_uploads(emu))
    again = publish(project, folder, lambda text: None)
    assert not again.uploaded and again.upload.id == first.upload.id and len(_uploads(emu)) == before

    changed = publish(project, _lay_out(project, tmp_path, b"v" * 10), lambda text: None)
    assert changed.uploaded and changed.upload.version == 2 and emu.calls("CreateDatasetVersion")
    assert (emu.datasets_root / SLUG / "resnet18.pth").read_bytes() == b"v" * 10
    assert project.store.latest_dataset("kaggle", f"{USER}/{SLUG}").content_hash == changed.upload.content_hash


def test_a_dataset_deleted_on_kaggle_is_uploaded_again(kaggle, tmp_path):
    emu, project = kaggle
    folder = _lay_out(project, tmp_path, b"w")
    publish(project, folder, lambda text: None)
    emu.forget_datasets()
    assert publish(project, folder, lambda text: None).uploaded and len(emu.calls("CreateDataset")) == 2


def test_kaggles_size_limit_is_one_line_in_its_words(kaggle, tmp_path):
    emu, project = kaggle
    emu.dataset_max_bytes = 100
    with pytest.raises(DatasetRefused) as refused:
        publish(project, _lay_out(project, tmp_path, b"w" * 1000), lambda text: None)
    assert str(refused.value).startswith(f"Kaggle refused dataset {USER}/{SLUG}: The size of your files is 1000 bytes, "
                                         "it exceeds the maximum of")
    assert "\n" not in str(refused.value) and project.store.latest_dataset("kaggle", f"{USER}/{SLUG}") is None


def test_a_slug_taken_is_kaggles_refusal_in_one_line(kaggle, tmp_path):
    """A dataset Kaggle does not show yet (kaggle-cli#890) but holds already, and a kernel of that slug (#361)."""
    emu, project = kaggle
    emu.dataset_hidden_polls = 99
    project.backend.upload_dataset(_lay_out(project, tmp_path, b"w"), new=True, notes="")  # another command's
    with pytest.raises(DatasetRefused) as refused:
        publish(project, _lay_out(project, tmp_path, b"v"), lambda text: None)
    assert str(refused.value) == (f'Kaggle refused dataset {USER}/{SLUG}: The requested title "{SLUG}" is already in '
                                  "use by a dataset. Please choose another title. (delete or rename your dataset of "
                                  "that slug or title on kaggle.com, then run the command again)")
    emu.kernels["timm-weights-resnet34"] = {"id": 1, "title": "timm weights resnet34", "versions": {}}
    with pytest.raises(DatasetRefused, match=r"\(HTTP 400\) \(a kernel of yours with the same slug"):
        publish(project, _lay_out(project, tmp_path, b"v", slug="timm-weights-resnet34"), lambda text: None)


def test_a_dataset_past_the_private_quota_never_appears_and_is_said(kaggle, tmp_path, monkeypatch):
    emu, project = kaggle
    emu.private_quota_bytes = 100
    monkeypatch.setattr(datasets, "APPEAR_S", 0.5)
    with pytest.raises(DatasetRefused, match=r"accepted dataset .* but it has not appeared .*kaggle-cli#284"):
        publish(project, _lay_out(project, tmp_path, b"w" * 1000), lambda text: None)


def test_a_new_version_waits_for_the_first_to_be_processed(kaggle, tmp_path):
    """Kaggle refuses a version while the dataset's first is processed (403, Kaggle/kagglehub#182): the upload
    waits for it instead."""
    emu, project = kaggle
    project.backend.upload_dataset(_lay_out(project, tmp_path, b"w"), new=True, notes="")  # another command's
    with pytest.raises(DatasetRefused, match=r"\(HTTP 403\) \(Kaggle takes no new version while"):
        project.backend.upload_dataset(_lay_out(project, tmp_path, b"u"), new=False, notes="")
    emu.dataset_polls_to_ready = 3
    assert publish(project, _lay_out(project, tmp_path, b"v"), lambda text: None).upload.version == 2


def test_a_kernel_attaching_a_dataset_kaggle_does_not_know_is_refused(kaggle, tmp_path):
    from emulator import build_tiny_competition, write_kernel

    emu, project = kaggle
    build_tiny_competition(tmp_path / "competitions")
    folder = write_kernel(tmp_path / "kernels", "attach-abc12345", "print(1)", gpu=False,
                          dataset_sources=(f"{USER}/never-uploaded",))
    with pytest.raises(BackendError, match=f"version 1 without sources it does not know: {USER}/never-uploaded "):
        project.backend.push(folder)


def test_an_offline_kaggle_kernel_without_weights_here_is_one_line_before_anything_is_pushed(kaggle, tmp_path,
                                                                                             monkeypatch, capsys):
    import sys

    from emulator import build_tiny_competition

    from toolkit import cli

    emu, _ = kaggle
    build_tiny_competition(tmp_path / "competitions")
    monkeypatch.setattr(sys, "argv", ["kpush", "train", "--backend", "kaggle", "--no-internet", "--arch", "resnet18",
                                      "--competition", "tiny-comp"])
    with pytest.raises(SystemExit) as exited:
        cli.kpush()
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and "\n" not in err and "Traceback" not in err
    assert "no pretrained weights for resnet18 on this machine" in err and "timm-weights/resnet18.pth" in err
    assert not emu.calls("SaveKernel") and not emu.calls("CreateDataset")
