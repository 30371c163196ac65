"""`make tune`: candidates of the model's hyperparameters, tried as DVC experiments and chosen
honestly.

- space.py: params.yaml's `tune.space`, checked against scikit-learn before anything runs, and
  the candidates drawn from it.
- trial.py: one candidate scored by cross-validation on the train rows only (tune/dvc.yaml's
  stage, what each experiment records), with its fit time and its ONNX size and latency.
- pool.py: the trials in one process's forked workers, one native thread each.
- leaderboard.py: the candidates ranked, each compared with the best by a paired bootstrap over
  the same out-of-fold rows, and the rule that chooses among those within noise.
- stage.py: the project's `stages/tune.py` hands it `make_pipeline`: the plan (the space checked,
  the candidates drawn), the search of `make tune`, and one trial.
- experiments.py (`python -m mlops_actions.tune`): runs the search, saves each result as a DVC
  experiment (`dvc exp save`) and puts the workspace back, reads the results back, and applies
  the chosen one.
"""
