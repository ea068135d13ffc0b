"""Search over runs: Optuna studies, PBT on forks, the LR range test."""
