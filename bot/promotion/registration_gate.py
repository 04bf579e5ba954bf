"""Gate 1, registration: is this model directory a well-formed, safe candidate? Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from evaluators.artifacts.loading import Classifier, classify_artifact_bytes, hidden_code
from evaluators.bounded import (
    MAX_DOCUMENT_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_TEXT_BYTES,
    check_model_directory,
    read_text,
)
from evaluators.candidate import (
    REQUIRED_FILES,
    WEIGHTS_DIR,
    ModelConfig,
    parse_claimed_results,
    parse_data_manifest,
    parse_model_config,
)
from evaluators.errors import DocumentError
from evaluators.escaping import code_span, markdown


class Conclusion(StrEnum):
    """Conclusions that block branch protection when wrong: never neutral or skipped."""

    SUCCESS = "success"
    FAILURE = "failure"
    ACTION_REQUIRED = "action_required"


@dataclass
class GateResult:
    model: str
    conclusion: Conclusion
    title: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: ModelConfig | None = None

    def summary(self) -> str:
        # Problems and notes are Markdown whose untrusted parts are already escaped.
        lines = [f"**{markdown(self.title)}**", ""]
        if self.problems:
            lines.append("Problems:")
            lines += [f"- {p}" for p in self.problems]
            lines.append("")
        if self.notes:
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines).strip()


def evaluate_candidate(
    *,
    model: str,
    files: dict[str, bytes],
    lfs_paths: set[str],
    file_errors: dict[str, str],
    exists: bool = True,
    directory_problem: str | None = None,
    classify: Classifier = classify_artifact_bytes,
) -> GateResult:
    """Layout, config and results schema, LFS integrity, and safe artifact formats.

    `classify` judges each weights file's bytes: the bot passes its audit process's, so the
    PR's artifacts are parsed away from the bot; `shipyard check` parses them in-process."""
    if not exists:
        return GateResult(
            model=model,
            conclusion=Conclusion.ACTION_REQUIRED,
            title=f"{model}: this PR removes the model directory",
            problems=["Removing a production model is not a promotion; a maintainer must decide."],
        )
    problem = directory_problem or check_model_directory(len(b) for b in files.values())
    if problem:
        return GateResult(
            model=model,
            conclusion=Conclusion.FAILURE,
            title=f"{model}: the model directory is too large to check",
            problems=[markdown(f"{problem[0].upper()}{problem[1:]}; nothing in it was read.")],
        )
    problems: list[str] = []
    notes: list[str] = []
    for name in REQUIRED_FILES:
        if name not in files:
            problems.append(f"`{name}` is missing")
    weights = {p: b for p, b in files.items() if p.startswith(WEIGHTS_DIR + "/")}
    if not weights and not any(p.startswith(WEIGHTS_DIR + "/") for p in file_errors):
        problems.append("`weights/` is missing or empty")

    config = _parse(problems, "config.yaml", files, parse_model_config)
    _parse(problems, "eval_results.json", files, parse_claimed_results)
    changelog = _read(problems, "CHANGELOG.md", files, MAX_TEXT_BYTES)
    if changelog is not None and not changelog.strip():
        problems.append("`CHANGELOG.md` is empty: say what changed and why")
    manifest = _read(problems, "data_manifest.txt", files, MAX_MANIFEST_BYTES)
    if manifest is not None and not parse_data_manifest(manifest):
        problems.append("`data_manifest.txt` lists no training data snapshot")

    for path, error in sorted(file_errors.items()):
        problems.append(f"{code_span(path)}: {markdown(error)}")
    verdicts = {
        path: classify(data, filename=path)
        for path, data in sorted(weights.items())
        if path not in file_errors
    }
    for path, verdict in verdicts.items():
        data = weights[path]
        if not verdict.safe:
            problems.append(f"{code_span(path)}: {markdown(verdict.reason)}")
        else:
            source = "Git LFS, sha256 verified" if path in lfs_paths else "in Git"
            notes.append(f"{code_span(path)}: {verdict.format} ({len(data):,} bytes, {source})")
    # Every other file too: a pickle hidden as preprocessing/scaler.pkl (or renamed to
    # anything) is found by its bytes, and refused without being opened.
    for path, data in sorted(files.items()):
        if path in weights or path in file_errors:
            continue
        reason = hidden_code(data, filename=path)
        if reason:
            problems.append(f"{code_span(path)}: {markdown(reason)}")

    if config is not None:
        if config.name != model:
            problems.append(
                f"`config.yaml` names the model {code_span(config.name)} "
                f"but its directory is {code_span(model)}"
            )
        if config.weights not in files and config.weights not in file_errors:
            problems.append(
                f"`config.yaml` points to {code_span(config.weights)}, which does not exist"
            )
        elif config.weights in verdicts:
            verdict = verdicts[config.weights]
            if verdict.safe and verdict.format != config.format.value:
                problems.append(
                    f"`config.yaml` says format `{config.format.value}` but "
                    f"{code_span(config.weights)} is `{verdict.format}`"
                )

    if problems:
        return GateResult(
            model=model,
            conclusion=Conclusion.FAILURE,
            title=f"{model}: not a valid candidate ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''})",
            problems=problems,
            notes=notes,
            config=config,
        )
    return GateResult(
        model=model,
        conclusion=Conclusion.SUCCESS,
        title=f"{model}: registered as a candidate",
        notes=notes,
        config=config,
    )


def _read(problems: list[str], name: str, files: dict[str, bytes], max_bytes: int) -> str | None:
    if name not in files:
        return None
    try:
        return read_text(files[name], source=name, max_bytes=max_bytes)
    except DocumentError as exc:
        problems.append(markdown(str(exc)))
        return None


def _parse(problems: list[str], name: str, files: dict[str, bytes], parser):  # type: ignore[no-untyped-def]
    text = _read(problems, name, files, MAX_DOCUMENT_BYTES)
    if text is None:
        return None
    try:
        return parser(text, source=name)
    except DocumentError as exc:  # its lines quote the author's keys: escaped
        problems.extend(markdown(line) for line in str(exc).splitlines())
        return None
