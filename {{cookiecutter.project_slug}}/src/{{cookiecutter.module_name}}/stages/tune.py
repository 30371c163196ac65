"""Stage tune (tune/dvc.yaml), and the plan of `make tune`: the machinery is mlops_actions.tune;
this module hands it the project's own model families (models.py), so a family or a preprocessing
step added there can be tuned too.

`plan` checks params.yaml's `tune.space` for train.model's family and draws the candidates;
`search` (make tune) scores them in one process and saves each as a DVC experiment; `trial`
scores the candidate params.yaml holds (tune/dvc.yaml's stage), or one of the plan (tune.yml), by
cross-validation on the train rows only."""

from mlops_actions.errors import run_stage
from mlops_actions.tune.stage import main

from ..models import make_pipeline

if __name__ == "__main__":
    run_stage("tune", lambda: main(make_pipeline))
