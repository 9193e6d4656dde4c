"""`mlops demo` in a reduced mode (a slice of the photos, a lower threshold made explicit), end to end."""

from __future__ import annotations

import json

from stack_support import mlops, stack_env, status

# Reduced mode: 40 training photos per class, 40 test photos per class, warm-up only. The gate is
# lowered to 0.80 on purpose for this slice (the full demo keeps 0.90).
REDUCED = [
    "--train-images-per-class",
    "40",
    "--eval-images-per-class",
    "40",
    "--finetune-epochs",
    "0",
    "--threshold",
    "0.80",
]


def test_reduced_demo_runs_the_whole_lifecycle(tmp_path, data_dir, weights):
    env = stack_env(tmp_path / "home", data_dir)
    env["PRETRAINED_WEIGHTS"] = str(weights)
    summary_path = tmp_path / "summary.json"
    try:
        out = mlops("demo", *REDUCED, "--json-out", str(summary_path), env=env, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        text = out.stdout
        for stage in (
            "1. Local stack",
            "2. Pipeline",
            "3. Manual approval",
            "4. Promote",
            "5. Classify",
            "6. Safety net",
            "Done",
        ):
            assert stage in text, stage
        assert "standing in for the human reviewer" in text
        assert "rolled back to version 1" in text
        assert "make down" in text and "mlflow" in text.lower()
        summary = json.loads(summary_path.read_text())
        assert summary["version"] == "1" and summary["accuracy"] >= 0.80
        assert summary["rolled_back_version"] == "2"
        answers = summary["answers"] + summary["after_rollback"]
        assert all(a["status"] == 200 and a["model_version"] == "1" for a in answers)
        assert sum(a["label"] == a["truth"] for a in answers) >= len(answers) - 1
        live = status(env)
        assert live["model_version"] == summary["canary"]["version"] == "3"  # released by canary
        assert live["api_url"].startswith("http://127.0.0.1:")
        assert "7. Canary" in text and summary["canary"]["client"]["failed"] == 0
        assert "8. Shadow" in text and summary["shadow"]["agreement"] < 0.97 and "agreement" in text
    finally:
        mlops("down", env=env)
