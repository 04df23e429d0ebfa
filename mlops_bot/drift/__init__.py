"""Data drift: the data the champion sees now against the data it was trained on (monitor: in ml.yaml)."""
