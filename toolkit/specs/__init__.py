"""What a run is, as data: RunSpec with its validation, slug and content hash (spec), transform expressions
parsed as data and never executed (transforms), and sweep files, TOML tables of run rows (sweep_file)."""
