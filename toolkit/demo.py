"""`python -m toolkit.demo [--code | --csv]`: build the bundled demo competition (toolkit.competitions.demo) and its
pretrained weights in this project, and say where they are."""

import argparse

from toolkit.competitions.demo import CODE_NAME, CSV_NAME, build_competition, build_weights
from toolkit.core.config import load_config


def main(argv: list[str] | None = None) -> None:
    """The demo competition (or its code-competition or CSV-labelled variant) and weights, in this project."""
    parser = argparse.ArgumentParser(prog="python -m toolkit.demo", description="Build the demo competition here.")
    parser.add_argument("--code", action="store_true", help=f"build {CODE_NAME}, a code competition with a hidden test set")
    parser.add_argument("--csv", action="store_true", help=f"build {CSV_NAME}, labelled by train.csv")
    args = parser.parse_args(argv)
    config = load_config()
    path = build_competition(config.resolve(config.competitions_root), code=args.code, csv_labels=args.csv)
    weights = build_weights(config.resolve(config.datasets_root))
    print(f"demo competition: {path.relative_to(config.project_dir)}")
    print(f"pretrained weights: {weights.relative_to(config.project_dir)}")


if __name__ == "__main__":
    main()
