"""The code kernels run, as ordinary modules with unit tests: inputs, the data path (images), the learner,
the epoch log, the outputs writer, the pack runner, the predicting ensemble's members, ensembling and failure
lines. Pasted into notebooks at render (render.runtime_source), where the toolkit is not installed: they import
only what Kaggle's image has, and each other only with single-line relative imports, which pasting removes."""
