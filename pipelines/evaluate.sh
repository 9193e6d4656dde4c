#!/usr/bin/env bash
# Evaluation step bootstrap inside the SageMaker processing container: unpack the project's code
# bundle, install what evaluation needs, run training/evaluate.py with the processing contract.
set -euo pipefail
cd /opt/ml/processing/input/code
tar -xzf sourcedir.tar.gz
pip install --quiet -r requirements.txt
exec python -m training.evaluate --model /opt/ml/processing/model --test /opt/ml/processing/test \
  --output /opt/ml/processing/evaluation
