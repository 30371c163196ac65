"""Pipeline stages, one module each, run by DVC as `python -m <package>.stages.<stage>`.

Every path comes from the stage's `cmd` in dvc.yaml, every setting from params.yaml.
"""
