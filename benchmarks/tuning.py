"""What a 2-trial tune adds to a run, against the two trials' own training time, measured in
the same run of this script.

The tiny preset on the demo data, in process. The upstream components run once first, so
both measured runs reuse them from the cache. Then:
- plain: `--to Trainer`;
- tuned: the same with the Tuner (2 trials of STEPS steps), which re-runs the Trainer too.
The tune adds (tuned wall - tuned Trainer) - (plain wall - plain Trainer): the Trainer is
left out because it trains with other hyperparameters once tuned. The trials' own training
time is each trial's model.fit, which the Tuner logs. Target: added <= trials' fit + 30 s.
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import node_id, report  # noqa: E402

TRIALS = 2
STEPS = 25
FIT = re.compile(r"Tuner: trial \d+: .* fit ([\d.]+) s")


class TrialTimes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if match := FIT.match(record.getMessage()):
            self.seconds.append(float(match[1]))


def main() -> None:
    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset
    from pipelines.local_runner import run_pipeline

    times = TrialTimes()
    logging.getLogger().addHandler(times)
    logging.getLogger().setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_demo_dataset(root / "data", per_class=60, seed=7)
        fields = dict(data=str(root / "data"), output_root=str(root / "out"))
        plain_config = build_config("tiny", **fields)
        tuned_config = build_config(
            "tiny", **fields, tune=True, tune_trials=TRIALS, tune_steps_per_trial=STEPS
        )
        trainer = node_id(plain_config, "model")
        tuner = node_id(tuned_config, "hyperparameters")
        run_pipeline(plain_config, node_id(plain_config, "transform_graph"))
        plain = run_pipeline(plain_config, trainer)
        tuned = run_pipeline(tuned_config, trainer)
    assert len(times.seconds) == TRIALS, times.seconds
    added = (tuned.wall_seconds - tuned.components[trainer].seconds) - (
        plain.wall_seconds - plain.components[trainer].seconds
    )
    fit = sum(times.seconds)
    report(
        "tuning",
        {
            "tune_added_over_trials_fit": added / fit,
            "tune_added_seconds": added,
            "trials_fit_seconds": fit,
            "added_minus_trials_fit_seconds": added - fit,
        },
        {
            "trials": TRIALS,
            "steps_per_trial": STEPS,
            "tuner_component_seconds": tuned.components[tuner].seconds,
            "plain_wall_seconds": plain.wall_seconds,
            "tuned_wall_seconds": tuned.wall_seconds,
            "plain_trainer_seconds": plain.components[trainer].seconds,
            "tuned_trainer_seconds": tuned.components[trainer].seconds,
            "trial_fit_seconds": times.seconds,
            "target": "added_minus_trials_fit_seconds <= 30",
        },
    )


if __name__ == "__main__":
    main()
