"""experiments.toml: what the user declared, checked and expanded into run params.

- loader: `load(path)` → `Config`; every mistake one sentence with file, line and key
- model: `Config`, `Experiment` and the settings; `Config.expand` gives each run's params
- checks, search, slurm: the checks of experiment tables, `[search]`/`pbt`, sbatch settings
- locate: a key's line in the file; values: merging, dotted keys, `--set` text
- params: the `ParamSchema` registry (a trainer's params, through an entry point)
- fork: what a fork runs with; command: a command's templates and argv
"""
