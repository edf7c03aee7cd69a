"""The README's example output line carries exactly the transform's metadata columns, in order, before the item."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lambdas.transform.record import METADATA_COLUMNS

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_readme_example_line_has_the_metadata_columns_in_order():
    (line,) = re.findall(r'^\{"_event_name".*\}$', README, flags=re.MULTILINE)
    keys = list(json.loads(line))
    assert keys[: len(METADATA_COLUMNS)] == list(METADATA_COLUMNS)
    assert not any(k.startswith("_") for k in keys[len(METADATA_COLUMNS) :])
