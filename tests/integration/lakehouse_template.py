"""Read the lakehouse maintenance back from a synthesized consumer template: the statements each state machine
runs, exactly as deployed, and the window values each binds (for the offline proof and the template tests).

Each Athena task of the state machine is ``{"QueryString": <sql>, "ExecutionParameters.$": "States.Array(...)"}``
where every element is ``States.Format('\\'{}\\'', $.window.<name>)``: the window value ``<name>`` passed to Athena
as a SQL string literal (consumer/lakehouse/maintenance.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

ATHENA_SYNC = ":states:::athena:startQueryExecution.sync"
_PARAMETER = re.compile(r"States\.Format\('\\'\{\}\\'', \$\.window\.([a-z_]+)\)")


def _text(value: Any) -> str:
    """A DefinitionString as text: CDK writes it as Fn::Join around the partition's Ref."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(part if isinstance(part, str) else "aws" for part in parts)


def state_machines(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state machine of the template, parsed, by its StateMachineName."""
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            props = resource["Properties"]
            found[props["StateMachineName"]] = json.loads(_text(props["DefinitionString"]))
    return found


def parameter_names(rendered: str) -> tuple[str, ...]:
    """``("window_start", "window_end")`` from the ``States.Array(...)`` of a task's ExecutionParameters."""
    if not (rendered.startswith("States.Array(") and rendered.endswith(")")):
        raise ValueError(f"not a States.Array of window values: {rendered!r}")
    inner = rendered[len("States.Array(") : -1]
    names = tuple(_PARAMETER.findall(inner))
    rebuilt = ", ".join(f"States.Format('\\'{{}}\\'', $.window.{name})" for name in names)
    if rebuilt != inner:
        raise ValueError(f"unexpected execution parameters: {rendered!r}")
    return names


def maintenance_steps(template: dict[str, Any], state_machine_name: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """State name -> (QueryString, window values bound in order) of every Athena statement of one state machine
    (``TableNames.maintenance_state_machine``). Each value reaches Athena as a quoted SQL string literal."""
    definition = state_machines(template)[state_machine_name]
    steps = {}
    for name, state in definition["States"].items():
        if state.get("Type") != "Task" or not state["Resource"].endswith(ATHENA_SYNC):
            continue
        parameters = state["Parameters"]
        rendered = parameters.get("ExecutionParameters.$")
        steps[name] = (parameters["QueryString"], parameter_names(rendered) if rendered else ())
    return steps
