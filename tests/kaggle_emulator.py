"""The Kaggle API emulator under its first name: everything lives in the `emulator` package."""

from emulator import (KEY, USER, Fault, KaggleEmulator, Recorded, Version, build_tiny_competition,  # noqa: F401
                      prepare_client, use_emulator, wait_scored, wait_until_done, write_kernel)
