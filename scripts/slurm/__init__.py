"""The Slurm driver of the scale sweep (python -m scripts.cluster)."""
