"""The worked example in docs/transform-contract.md is what the handler really produces."""

import base64
import json
import re
from pathlib import Path

from .builders import event, run

DOC = Path(__file__).resolve().parents[3] / "docs" / "transform-contract.md"


def _block(text, marker):
    match = re.search(rf"<!-- {marker} -->\n```json\n(.*?)```", text, re.DOTALL)
    assert match, f"{marker} block missing from {DOC}"
    return match.group(1)


def test_documented_example_output_is_exact():
    text = DOC.read_text(encoding="utf-8")
    change = json.loads(_block(text, "example-input"))
    expected_line = _block(text, "example-output").encode()
    data = base64.b64encode(json.dumps(change, ensure_ascii=False, separators=(",", ":")).encode()).decode()
    response, _ = run(event(data))
    (result,) = response["records"]
    assert result["result"] == "Ok"
    assert base64.b64decode(result["data"]) == expected_line
