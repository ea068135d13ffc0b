"""Search over runs: studies and populations that queue runs, and the LR range test.

- study: one Optuna study (its files, sampler, pruner, and the driver of its trials)
- outcome: what a trial's run means to its study; view: a study as its runs say it is
- pbt: population-based training on forks
- studies: every study of a logs directory, stepped by the supervisor; `study show`
- lrfind: the LR range test's plan and reading; launch: queue any experiment
"""
