"""Competition folders on this machine: finding them and checking their shape as fastai will read them (layout,
labels for CSV-labelled ones), scoring predictions against hidden labels (scoring, the local leaderboard's
metric) and building the bundled demo competitions from data that ships in packages (demo)."""
