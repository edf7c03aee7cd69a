"""Read the lakehouse maintenance back from a synthesized consumer template: the statements each state machine
runs, exactly as deployed, and the window values each takes (for the offline proof and the template tests).

Each Athena task of the state machine is one of
- ``{"QueryString": <sql>}`` (no window values);
- ``{"QueryString": <sql>, "ExecutionParameters.$": "States.Array(...)"}``, every element
  ``States.Format('\\'{}\\'', $.window.<name>)`` (or ``$.input.<name>`` for ``validate_window``): the value passed to
  Athena as a SQL string literal;
- ``{"QueryString.$": "States.Format('<escaped text>', $.window.<name>, ...)"}`` (the MERGE: Athena takes no
  execution parameters for it): Step Functions writes the values into the text. ``states_format`` applies the
  intrinsic's semantics (backslash escapes of ' { } \\, each ``{}`` replaced by the next argument:
  https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html) so the proof runs the very text
  Athena would receive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from consumer.lakehouse.sql import Step

ATHENA_SYNC = ":states:::athena:startQueryExecution.sync"
_PARAMETER = re.compile(r"States\.Format\('\\'\{\}\\'', \$\.(window|input|chunk)\.([a-z_]+)\)")
_FORMAT = "States.Format('"


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


def all_states(definition: dict[str, Any]) -> dict[str, Any]:
    """Every state of a state machine definition, those of a Map's iterations included (state names are unique
    across the whole machine)."""
    states = dict(definition["States"])
    for state in definition["States"].values():
        inner = state.get("ItemProcessor", {}).get("States", {})
        assert not set(inner) & set(states), "a state name used twice"
        states.update(inner)
    return states


def parameter_names(rendered: str) -> tuple[str, ...]:
    """``("window_start", "window_end")`` from the ``States.Array(...)`` of a task's ExecutionParameters."""
    if not (rendered.startswith("States.Array(") and rendered.endswith(")")):
        raise ValueError(f"not a States.Array of window values: {rendered!r}")
    inner = rendered[len("States.Array(") : -1]
    found = _PARAMETER.findall(inner)
    rebuilt = ", ".join(f"States.Format('\\'{{}}\\'', $.{source}.{name})" for source, name in found)
    if rebuilt != inner:
        raise ValueError(f"unexpected execution parameters: {rendered!r}")
    # A chunk's days come from the Map item ($.chunk), window values from $.window (or $.input for validate_window).
    for source, name in found:
        if (source == "chunk") != name.startswith("chunk_"):
            raise ValueError(f"{name} read from $.{source}: {rendered!r}")
    return tuple(name for _, name in found)


def parse_format(rendered: str) -> tuple[str, tuple[str, ...]]:
    """``States.Format('<template>', $.window.a, $.window.b)`` -> (the template as written, escapes kept; the names)."""
    if not rendered.startswith(_FORMAT):
        raise ValueError(f"not a States.Format: {rendered[:60]!r}")
    i = len(_FORMAT)
    while rendered[i] != "'":
        i += 2 if rendered[i] == "\\" else 1
    template, rest = rendered[len(_FORMAT) : i], rendered[i + 1 :]
    match = re.fullmatch(r"((?:, \$\.window\.[a-z_]+)*)\)", rest)
    if match is None:
        raise ValueError(f"unexpected States.Format arguments: {rest!r}")
    return template, tuple(re.findall(r"\$\.window\.([a-z_]+)", match.group(1)))


def states_format(template: str, arguments: Sequence[str]) -> str:
    """What ``States.Format`` returns: backslash-escaped characters as themselves, each unescaped ``{}`` the next
    argument (their count must match); an unescaped ' { or } alone is not a valid template."""
    out, values, i = [], list(arguments), 0
    while i < len(template):
        c = template[i]
        if c == "\\":
            out.append(template[i + 1])
            i += 2
        elif template.startswith("{}", i):
            if not values:
                raise ValueError("more {} than arguments")
            out.append(values.pop(0))
            i += 2
        elif c in "{}'":
            raise ValueError(f"unescaped {c!r} at {i}")
        else:
            out.append(c)
            i += 1
    if values:
        raise ValueError("more arguments than {}")
    return "".join(out)


def maintenance_steps(template: dict[str, Any], state_machine_name: str) -> dict[str, Step]:
    """State name -> Step of every Athena statement of one state machine (``TableNames.maintenance_state_machine``).
    For an execution-parameter step, ``sql`` is the QueryString and ``parameters`` the values bound in order; for an
    ``inline`` step, ``sql`` is the States.Format template (escaped, ``{}`` where each value goes, inside quotes):
    ``states_format(step.sql, values)`` is the statement Athena receives."""
    steps = {}
    for name, state in all_states(state_machines(template)[state_machine_name]).items():
        if state.get("Type") != "Task" or not state["Resource"].endswith(ATHENA_SYNC):
            continue
        parameters = state["Parameters"]
        if "QueryString.$" in parameters:
            text, names = parse_format(parameters["QueryString.$"])
            steps[name] = Step(name, text, names, inline=True)
            continue
        rendered = parameters.get("ExecutionParameters.$")
        steps[name] = Step(name, parameters["QueryString"], parameter_names(rendered) if rendered else ())
    return steps


def bind(step: Step, values: dict[str, str]) -> tuple[str, list[str]]:
    """The statement and execution parameters Athena receives for ``values`` (window value name -> hour text)."""
    if step.inline:
        return states_format(step.sql, [values[p] for p in step.parameters]), []
    return step.sql, [values[p] for p in step.parameters]
