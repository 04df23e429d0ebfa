"""A local deployment target: records which model version serves, as a real target would."""

import json
import os
from pathlib import Path

record = {k: os.environ[k] for k in ("MODEL_NAME", "MODEL_VERSION", "MODEL_URI")}
Path("deployed").mkdir(exist_ok=True)
Path("deployed/current.json").write_text(json.dumps(record, indent=2) + "\n")
print(f"serving {record['MODEL_NAME']} v{record['MODEL_VERSION']} from {record['MODEL_URI']}")
