"""Configuration precedence and validation (toolkit/core/config.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit.core.config import _TYPES, Config, load_config
from toolkit.core.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("TOOLKIT_"):
            monkeypatch.delenv(key)


def write_toml(folder: Path, text: str) -> None:
    (folder / "toolkit.toml").write_text(text)


def test_defaults(tmp_path):
    config = load_config(tmp_path)
    assert config.project_dir == tmp_path.resolve()
    assert (config.backend, config.competition, config.concurrency) == ("local", "digits-demo", 1)
    assert config.private is True and config.internet is True and config.accelerator == "NvidiaTeslaT4"
    assert config.given == frozenset() and not config.explicit_poll
    assert config.store_path == tmp_path.resolve() / ".toolkit" / "runs.sqlite"
    assert config.resolve(config.competitions_root) == tmp_path.resolve() / "competitions"
    assert config.session_timeout_s == 9 * 3600 - 300  # under the 9 h GPU sessions may be capped at


def test_precedence_flag_over_env_over_file_over_default(tmp_path, monkeypatch):
    assert load_config(tmp_path).concurrency == 1
    write_toml(tmp_path, "concurrency = 2\n")
    assert load_config(tmp_path).concurrency == 2
    monkeypatch.setenv("TOOLKIT_CONCURRENCY", "3")
    assert load_config(tmp_path).concurrency == 3
    assert load_config(tmp_path, concurrency=4).concurrency == 4
    assert load_config(tmp_path, concurrency=None).concurrency == 3  # None means the flag was not given


def test_each_layer_may_set_different_keys(tmp_path, monkeypatch):
    write_toml(tmp_path, 'username = "filer"\ncompetition = "paddy-disease-classification"\nprivate = false\n')
    monkeypatch.setenv("TOOLKIT_USERNAME", "envuser")
    config = load_config(tmp_path, backend="kaggle")
    assert (config.username, config.competition, config.private, config.backend) == \
        ("envuser", "paddy-disease-classification", False, "kaggle")
    assert config.given == {"username", "competition", "private", "backend"}


def test_env_values_are_parsed(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_INTERNET", "off")
    monkeypatch.setenv("TOOLKIT_PRIVATE", "Yes")
    monkeypatch.setenv("TOOLKIT_POLL_INITIAL_S", "5")
    monkeypatch.setenv("TOOLKIT_POLL_MAX_S", "60.5")
    monkeypatch.setenv("TOOLKIT_COMPETITIONS_ROOT", "/data/comps")
    config = load_config(tmp_path)
    assert config.internet is False and config.private is True
    assert config.poll_initial_s == 5.0 and config.poll_max_s == 60.5 and config.explicit_poll
    assert config.competitions_root == Path("/data/comps")
    assert config.resolve(config.competitions_root) == Path("/data/comps")


def test_project_dir_from_env(tmp_path, monkeypatch):
    write_toml(tmp_path, 'username = "from-project"\n')
    monkeypatch.setenv("TOOLKIT_PROJECT", str(tmp_path))
    monkeypatch.chdir("/")
    config = load_config()
    assert config.project_dir == tmp_path.resolve() and config.username == "from-project"


def test_train_table_from_file(tmp_path):
    write_toml(tmp_path, '[train]\nepochs = 3\narch = "resnet18"\n')
    assert load_config(tmp_path).train == {"epochs": 3, "arch": "resnet18"}


def test_unknown_toml_key(tmp_path):
    write_toml(tmp_path, "concurency = 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "concurency" in info.value.message and "concurrency" in info.value.hint


@pytest.mark.parametrize("text, key", [
    ('concurrency = "two"\n', "concurrency"), ("concurrency = true\n", "concurrency"),
    ("concurrency = 1.5\n", "concurrency"), ('internet = "yes"\n', "internet"), ("backend = 1\n", "backend"),
    ('poll_max_s = "1m"\n', "poll_max_s"), ("train = 3\n", "train"),
])
def test_wrong_types_in_toml(tmp_path, text, key):
    write_toml(tmp_path, text)
    with pytest.raises(ConfigError, match=key):
        load_config(tmp_path)


def test_invalid_toml(tmp_path):
    write_toml(tmp_path, "concurrency = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)


@pytest.mark.parametrize("name, value", [
    ("TOOLKIT_CONCURRENCY", "abc"), ("TOOLKIT_CONCURRENCY", "1.5"), ("TOOLKIT_INTERNET", "maybe"),
    ("TOOLKIT_POLL_MAX_S", "soon"), ("TOOLKIT_MAX_OUTPUT_MB", ""),
])
def test_bad_env_values(tmp_path, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_config(tmp_path)


def test_unknown_backend(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, backend="azure")
    assert "azure" in info.value.message and "kaggle" in info.value.hint
    monkeypatch.setenv("TOOLKIT_BACKEND", "colab")
    with pytest.raises(ConfigError, match="colab"):
        load_config(tmp_path)


@pytest.mark.parametrize("flags", [{"concurrency": 0}, {"poll_initial_s": 0}, {"poll_initial_s": 10, "poll_max_s": 5},
                                   {"max_output_mb": 0}])
def test_bad_values(tmp_path, flags):
    with pytest.raises(ConfigError):
        load_config(tmp_path, **flags)


def test_every_settable_key_is_a_config_field():
    fields = set(Config.__dataclass_fields__)
    assert set(_TYPES) <= fields


def test_toolkit_toml_that_is_a_folder(tmp_path):
    (tmp_path / "toolkit.toml").mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "toolkit.toml is not a file" in info.value.message and "remove it" in info.value.hint


@pytest.mark.parametrize("text, key", [
    ("wait_timeout_s = -5\n", "wait_timeout_s"), ("session_timeout_s = 0\n", "session_timeout_s"),
    ("poll_max_s = nan\n", "poll_max_s"), ("api_timeout_s = inf\n", "api_timeout_s"),
    ("wait_timeout_s = -inf\n", "wait_timeout_s"), ("poll_initial_s = 0.0\n", "poll_initial_s"),
])
def test_durations_must_be_positive_and_finite(tmp_path, text, key):
    write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert f"{key} must be a positive number of seconds" in info.value.message
    assert f"TOOLKIT_{key.upper()}" in info.value.hint


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_env_numbers_must_be_finite(tmp_path, monkeypatch, value):
    monkeypatch.setenv("TOOLKIT_POLL_INITIAL_S", value)
    with pytest.raises(ConfigError, match=f"TOOLKIT_POLL_INITIAL_S='{value}' is not a finite number"):
        load_config(tmp_path)


def test_poll_max_below_poll_initial_names_both(tmp_path):
    with pytest.raises(ConfigError, match=r"poll_max_s \(5\) must be at least poll_initial_s \(10\)"):
        load_config(tmp_path, poll_initial_s=10, poll_max_s=5)


def test_a_missing_project_folder_is_not_created(tmp_path, monkeypatch):
    missing = tmp_path / "nonexistent"
    monkeypatch.setenv("TOOLKIT_PROJECT", str(missing))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert info.value.message == f"TOOLKIT_PROJECT={missing} does not exist" and "create the folder" in info.value.hint
    assert not missing.exists()
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TOOLKIT_PROJECT", str(tmp_path / "file"))
    with pytest.raises(ConfigError, match="is not a folder"):
        load_config()


def test_labels_settings_from_file_and_env(tmp_path, monkeypatch):
    assert load_config(tmp_path).labels_given == {"csv": "", "id": "", "label": ""}  # detect
    write_toml(tmp_path, 'labels_csv = "train.csv"\nid_column = "image"\n')
    monkeypatch.setenv("TOOLKIT_LABEL_COLUMN", "species")
    assert load_config(tmp_path).labels_given == {"csv": "train.csv", "id": "image", "label": "species"}


@pytest.mark.parametrize("text,expected", [
    ('labels_csv = "data/train.csv"\n', "labels_csv must be the name of a CSV file at the competition root"),
    ('labels_csv = "train.txt"\n', "not 'train.txt'"),
    ('labels_csv = ".."\n', "not '..'"),
    ('id_column = "x"\nlabel_column = "x"\n', "id_column and label_column are both 'x'"),
    ("id_column = 3\n", "'id_column' must be a string"),
])
def test_bad_labels_settings(tmp_path, text, expected):
    write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert expected in info.value.message
