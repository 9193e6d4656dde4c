#!/usr/bin/env bash
# Evaluation step bootstrap inside the SageMaker processing container: unpack the project's code
# bundle (its own input, /opt/ml/processing/input/bundle), install what evaluation needs, run
# training/evaluate.py with the processing contract (the test photos checked against the data manifest).
set -euo pipefail
work=$(mktemp -d)
tar -xzf /opt/ml/processing/input/bundle/sourcedir.tar.gz -C "$work"
cd "$work"
pip install --quiet -r requirements.txt
exec python -m training.evaluate --model /opt/ml/processing/model --test /opt/ml/processing/test \
  --data-manifest /opt/ml/processing/manifest/manifest.json --output /opt/ml/processing/evaluation
