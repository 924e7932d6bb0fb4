"""Mirrors of stored runs to experiment trackers (MLflow: harness.tracking.mlflow).

The results database stays the record; a mirror reads each finished run back from it, so
what the tracker shows is what was stored.
"""
