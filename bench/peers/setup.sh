#!/usr/bin/env bash
# Make bench/peers/.venv: the peers of issue 21 (requirements.txt) plus this repo's
# tuiexp (editable) with its dependencies except torch/torchvision (the bench trains
# nothing), apart from the project's own environment.
#   bash bench/peers/setup.sh [PYTHON]      (default: python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${1:-python3}"
venv="$here/.venv"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install -r "$here/requirements.txt"
# tuiexp's own dependencies, read from pyproject.toml, less torch
mapfile -t deps < <("$venv/bin/python" - "$repo/pyproject.toml" <<'PY'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
for d in deps:
    if re.match(r"(torch|torchvision)\b", d) is None:
        print(d)
PY
)
"$venv/bin/python" -m pip install "${deps[@]}"
"$venv/bin/python" -m pip install --no-deps -e "$repo"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("tuiexp", "trackio", "tensorboardX", "tensorboard", "wandb", "mlflow", "aim", "orjson"):
    print(f"{name} {md.version(name)}")
PY
