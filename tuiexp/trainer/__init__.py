"""The built-in PyTorch trainer (`python -m tuiexp.trainer`); see docs/TRAINER.md.

Importing this package must stay cheap: the core imports `tuiexp.trainer.config`
(which does not import torch) to check params.
"""
