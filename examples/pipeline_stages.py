"""Stages of examples/pipeline.py: skipped on rerun when their artifacts are up to date.

``StageRunner`` runs and skips stages; ``examples/pipeline_training.py`` holds the training
stages (data, teacher, scratch student, distilled students, compressed students) and
``examples/pipeline_report.py`` the later ones (strip, export, verify, report).

A stage is up to date when its manifest (``<output_dir>/manifests/<stage>.json``) exists, holds
the same key, and every artifact it lists exists with the content hash recorded there. The key
hashes the stage's own settings and its inputs' fingerprints (the recorded hashes of the upstream
stages' artifacts), so changing a flag re-runs the stages that depend on it and no others.
Artifacts are written to a temporary file and moved into place (``keras_kd.loading.atomic_path``), and the
manifest is written last: a crash or Ctrl-C loses at most the stage that was running.
"""

import hashlib
import json
import os
import time

from absl import logging

import keras_kd as kd


def file_hash(path):
    """The SHA-256 hex digest of a file's content (of every file's, for a SavedModel directory)."""
    digest = hashlib.sha256()
    files = [path]
    if os.path.isdir(path):
        files = sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
    for name in files:
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def save_json(value, path):
    """Writes JSON atomically (``keras_kd.loading.atomic_path``)."""
    with kd.loading.atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)


class StageRunner:
    """Runs stages in ``output_dir``, skipping those whose artifacts are up to date.

    Each stage announces one line when it ends: its number, name, seconds and key figure (what
    ``summary(info)`` returns), e.g. ``[ 4] distill/kd       3.1 s  Keras accuracy 0.9806``. With
    ``verbose`` >= 1 a header line also comes before a stage that runs, so that the Keras
    progress bars printed while it trains sit under its name.

    Args:
        output_dir: Where artifacts and manifests are written.
        force: Run every stage even when it is up to date.
        announce: Called with each line; ``print`` by default.
        verbose: 0, 1 or 2, as the scripts' ``--verbose``.

    Example:
        >>> runner = StageRunner("out")
        >>> info = runner.run("data", {"dataset": "digits"}, ["data.npz"], build_data)
    """

    def __init__(self, output_dir, force=False, announce=print, verbose=0):
        self.output_dir = output_dir
        self.force = force
        self.announce = announce
        self.verbose = verbose
        self.log = []  # (stage, "ran" | "skipped", seconds)
        os.makedirs(os.path.join(output_dir, "manifests"), exist_ok=True)

    def path(self, relative):
        """The absolute path of an artifact; its directory is created."""
        full = os.path.join(self.output_dir, relative)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return full

    def _manifest_path(self, stage):
        return os.path.join(self.output_dir, "manifests", stage.replace("/", "__") + ".json")

    def manifest(self, stage):
        """The stage's manifest dict, or ``None`` when it has none."""
        try:
            with open(self._manifest_path(stage), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def fingerprint(self, stage):
        """One hash of a finished stage's key and artifact hashes: the input of dependent keys."""
        manifest = self.manifest(stage)
        if manifest is None:
            raise ValueError(f"stage {stage!r} has not run in {self.output_dir!r}")
        text = json.dumps([manifest["key"], manifest["artifacts"]], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def up_to_date(self, stage, key):
        """True when the stage's manifest has ``key`` and every artifact is intact."""
        manifest = self.manifest(stage)
        if manifest is None or manifest.get("key") != key:
            return False
        for relative, digest in manifest["artifacts"].items():
            full = os.path.join(self.output_dir, relative)
            if not os.path.isfile(full) or file_hash(full) != digest:
                return False
        return True

    @staticmethod
    def key(settings):
        """The key of a stage run with ``settings``: a hash of their JSON."""
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()

    def run(self, stage, settings, artifacts, build, summary=None):
        """Runs ``build()`` unless the stage is up to date; returns the stage's info dict.

        Args:
            stage: The stage name, e.g. ``"distill/kd"``.
            settings: JSON-serializable flags and input fingerprints the stage depends on.
            artifacts: Paths relative to ``output_dir`` that ``build`` writes.
            build: A function that writes every artifact (atomically) and returns a JSON
                serializable info dict (metrics, sizes); artifacts known only while building
                are listed in its ``"extra_artifacts"``.
            summary: A function from the info dict to the stage's key figure (a short string)
                for its announced line; ``None`` announces none.

        Returns:
            The info dict, from ``build`` or from the manifest of an earlier run.
        """
        key = self.key(settings)
        number = len(self.log) + 1
        if not self.force and self.up_to_date(stage, key):
            info = self.manifest(stage)["info"]
            self.log.append((stage, "skipped", 0.0))
            self._announce(number, stage, "skipped", info, summary)
            return info
        if self.verbose >= 1:
            self.announce(f"== [{number}] {stage} ==")
        logging.info("stage %s: running", stage)
        start = time.perf_counter()
        info = build()
        seconds = time.perf_counter() - start
        artifacts = list(artifacts) + list(info.get("extra_artifacts", []))
        missing = [a for a in artifacts if not os.path.isfile(os.path.join(self.output_dir, a))]
        if missing:
            raise RuntimeError(f"stage {stage!r} did not write {missing}")
        save_json(
            {
                "stage": stage,
                "key": key,
                "settings": settings,
                "artifacts": {a: file_hash(os.path.join(self.output_dir, a)) for a in artifacts},
                "info": info,
                "seconds": round(seconds, 2),
            },
            self._manifest_path(stage),
        )
        self.log.append((stage, "ran", seconds))
        self._announce(number, stage, f"{seconds:5.1f} s", info, summary)
        return info

    def _announce(self, number, stage, status, info, summary):
        figure = summary(info) if summary else ""
        self.announce(f"[{number:>2}] {stage:<22} {status:>7}  {figure}".rstrip())
