"""Pipeline stages, one module each. DVC runs them as `python -m {{ cookiecutter.module_name }}.stages.<stage>`;
every path comes from the stage's `cmd` in dvc.yaml, every setting from params.yaml."""
