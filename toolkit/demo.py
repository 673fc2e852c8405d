"""`python -m toolkit.demo [--code | --csv | --paddy]`: build the bundled demo competition
(toolkit.competitions.demo) and its pretrained weights in this project, and say where they are."""

import argparse

from toolkit.competitions.demo import CODE_NAME, CSV_NAME, PADDY_NAME, build_competition, build_weights
from toolkit.core.config import load_config


def main(argv: list[str] | None = None) -> None:
    """The demo competition (or its code-competition, CSV-labelled or Paddy-shaped variant) and weights, here."""
    parser = argparse.ArgumentParser(prog="python -m toolkit.demo", description="Build the demo competition here.")
    parser.add_argument("--code", action="store_true", help=f"build {CODE_NAME}, a code competition with a hidden test set")
    parser.add_argument("--csv", action="store_true", help=f"build {CSV_NAME}, labelled by train.csv")
    parser.add_argument("--paddy", action="store_true",
                        help=f"build {PADDY_NAME}: the digits in Paddy Doctor's shape, for notebooks written for it")
    args = parser.parse_args(argv)
    config = load_config()
    path = build_competition(config.resolve(config.competitions_root), code=args.code, csv_labels=args.csv,
                             paddy=args.paddy)
    weights = build_weights(config.resolve(config.datasets_root))
    print(f"demo competition: {path.relative_to(config.project_dir)}")
    print(f"pretrained weights: {weights.relative_to(config.project_dir)}")


if __name__ == "__main__":
    main()
