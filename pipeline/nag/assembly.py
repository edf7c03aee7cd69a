"""Cloud assembly manifests -> the groups a gate passes or fails, and the construct metadata of every stack."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
Metadata = dict[str, list[dict[str, Any]]]  # construct path (no leading "/") -> metadata entries


class AssemblyError(Exception):
    """The directory is not a readable cloud assembly."""


@dataclass(frozen=True)
class Group:
    """A top-level stack, or a nested assembly (a Stage such as Pipeline/Consumer) with all its stacks."""

    name: str
    path: str  # construct path
    directory: str  # assembly directory relative to the root


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read(root: Path) -> tuple[list[Group], Metadata]:
    """Groups come from the manifests, never from a hard-coded list, so a renamed stage cannot be skipped."""
    groups: list[Group] = []
    metadata: Metadata = {}
    _walk(root, Path("."), False, groups, metadata)
    names = [g.name for g in groups]
    # Two stages may share a last path segment (A/Consumer, B/Consumer): those are named by their full path.
    return [Group(g.path, g.path, g.directory) if names.count(g.name) > 1 else g for g in groups], metadata


def _walk(root: Path, rel: Path, nested: bool, groups: list[Group], metadata: Metadata) -> None:
    manifest = root / rel / MANIFEST
    if not manifest.is_file():
        raise AssemblyError(f"{manifest} is missing: not a cloud assembly")
    for artifact_id, artifact in (read_json(manifest).get("artifacts") or {}).items():
        props = artifact.get("properties") or {}
        path = artifact.get("displayName") or props.get("displayName") or artifact_id
        if artifact.get("type") == "cdk:cloud-assembly":
            sub = rel / props.get("directoryName", artifact_id)
            groups.append(Group(path.rsplit("/", 1)[-1], path, sub.as_posix()))
            _walk(root, sub, True, groups, metadata)
        elif artifact.get("type") == "aws:cloudformation:stack":
            if not nested:
                groups.append(Group(path, path, rel.as_posix()))
            entries = dict(artifact.get("metadata") or {})  # older assemblies inline it
            if artifact.get("additionalMetadataFile"):
                entries.update(read_json(root / rel / artifact["additionalMetadataFile"]))
            for key, items in entries.items():
                metadata.setdefault(key.lstrip("/"), []).extend(items)


def group_of(groups: list[Group], path: str) -> Group | None:
    """The group whose construct path is the longest prefix: a pipeline Stage sits inside the pipeline stack."""
    owners = [g for g in groups if path == g.path or path.startswith(g.path + "/")]
    return max(owners, key=lambda g: len(g.path), default=None)


def find(groups: list[Group], wanted: str) -> Group | None:
    """By name, construct path or assembly directory name (``Consumer``, ``Pipeline/Consumer``, ``assembly-...``)."""
    return next((g for g in groups if wanted and wanted in (g.name, g.path, Path(g.directory).name)), None)


def logical_ids(metadata: Metadata) -> dict[str, str]:
    """Construct path -> CloudFormation logical id, to point a reader at the template."""
    return {p: e["data"] for p, entries in metadata.items() for e in entries if e.get("type") == "aws:cdk:logicalId"}
