"""The package layout (issue 14): imports run one way, and what was written before the move loads.

Directions, from the entry points down (``README.md``, Layout):

* only ``cli/`` and ``training/`` import Lightning;
* nothing imports ``cli/`` but ``cli/``; ``inference/`` never imports ``training/``;
* ``scoring/`` and ``metrics.py`` import neither Lightning nor the nets, training or inference;
* ``nets/`` knows nothing of data, training or inference; ``data/`` and ``features/`` nothing
  of nets, training, inference or the entry points;
* ``importers/`` (SpeechBrain / WeSpeaker checkpoints → model directories) may use
  ``inference/``, ``nets/`` and ``features/``, never ``training/`` (nor Lightning).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xvector"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pre_layout"

# (module prefix, forbidden import prefixes)
RULES = [
    ("xvector", ("lightning", "pytorch_lightning")),  # outside cli/ and training/: see ALLOWED_LIGHTNING
    ("xvector.inference", ("xvector.training", "xvector.cli")),
    ("xvector.scoring", ("xvector.nets", "xvector.training", "xvector.inference", "xvector.cli", "torch")),
    ("xvector.metrics", ("xvector.nets", "xvector.training", "xvector.inference", "xvector.cli", "torch",
                         "xvector.scoring", "xvector.data")),
    ("xvector.nets", ("xvector.data", "xvector.training", "xvector.inference", "xvector.cli", "xvector.corpora")),
    ("xvector.features", ("xvector.data", "xvector.nets", "xvector.training", "xvector.inference", "xvector.cli")),
    ("xvector.losses", ("xvector.data", "xvector.training", "xvector.inference", "xvector.cli")),
    ("xvector.data", ("xvector.nets", "xvector.training", "xvector.inference", "xvector.cli", "xvector.corpora")),
    ("xvector.corpora", ("xvector.nets", "xvector.training", "xvector.inference", "xvector.cli")),
    ("xvector.training", ("xvector.cli",)),
    # importers (issue 16) build model directories: inference/, nets/, features/, never training/
    ("xvector.importers", ("xvector.training", "xvector.cli")),
]
ALLOWED_LIGHTNING = ("xvector.cli", "xvector.training")


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(package: Path = PACKAGE) -> list[str]:
    """``module imports name`` for each import that breaks a rule of :data:`RULES`."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        mod = module_name(path, package)
        for name in sorted(imports_of(path)):
            for prefix, forbidden in RULES:
                if not _under(mod, prefix):
                    continue
                if prefix == "xvector" and any(_under(mod, a) for a in ALLOWED_LIGHTNING):
                    continue
                if any(_under(name, f) for f in forbidden):
                    bad.append(f"{mod} imports {name}")
            if _under(name, "xvector.cli") and not _under(mod, "xvector.cli"):
                bad.append(f"{mod} imports {name}")
    return sorted(set(bad))


def test_imports_run_one_way():
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path):
    pkg = tmp_path / "xvector"
    for sub, text in {
        "inference/api.py": "from xvector.training.system import SpeakerSystem\n",
        "scoring/cosine.py": "def f():\n    import lightning\n",
        "nets/tdnn.py": "from xvector.data import lists\n",
        "data/lists.py": "import xvector.cli.train\n",
        "training/system.py": "import lightning as L\nfrom xvector.nets.tdnn import XVector\n",
    }.items():
        (pkg / sub).parent.mkdir(parents=True, exist_ok=True)
        (pkg / sub).write_text(text)
    assert violations(pkg) == [
        "xvector.data.lists imports xvector.cli.train",
        "xvector.inference.api imports xvector.training.system",
        "xvector.inference.api imports xvector.training.system.SpeakerSystem",
        "xvector.nets.tdnn imports xvector.data",
        "xvector.nets.tdnn imports xvector.data.lists",
        "xvector.scoring.cosine imports lightning",
    ]


def test_no_import_cycle_between_modules():
    graph = {}
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    for mod, path in modules.items():
        graph[mod] = {m for m in imports_of(path) if m in modules and m != mod}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    # A package's __init__ importing its own modules lazily is not a cycle of modules.
    for mod in sorted(graph):
        graph[mod] = {m for m in graph[mod] if not (m == "xvector" or mod == "xvector")}
    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [])


def _wav() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32)


@pytest.mark.parametrize("name, source", [("ckpt", "last.ckpt"), ("model", "model")])
def test_written_before_the_move_loads_and_embeds_the_same(name, source):
    import xvector

    model = xvector.load_model(FIXTURES / source)
    expected = np.load(FIXTURES / "expected.npz")[name]
    np.testing.assert_allclose(np.asarray(model.embed(_wav(), sample_rate=16000)), expected, rtol=0, atol=1e-5)


def test_old_targets_are_mapped_to_their_new_homes():
    from hydra.utils import get_method, get_object

    from xvector.inference.embedder import CONFIG_KEY, read_checkpoint

    cfg = read_checkpoint(FIXTURES / "last.ckpt")[CONFIG_KEY]
    targets = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                targets.append(v) if k == "_target_" else walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfg)
    assert "xvector.training.datamodule.SpeakerDataModule" in targets
    assert "xvector.training.schedulers.warmup_cosine" in targets
    assert "xvector.training.margin_scheduler.MarginScheduler" in targets
    assert "xvector.corpora.synthetic.noise.ensure_augment_dirs" in targets
    for target in targets:  # every one resolves after the move
        assert get_object(target) if target[0].isupper() or "." in target else get_method(target)


def test_old_checkpoint_resumes_training(tmp_path):
    """``ckpt_path=`` of a pre-move checkpoint: Lightning restores it and trains on (1 more epoch)."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import TINY_NET
    from xvector import CONFIG_DIR
    from xvector.cli.train import train
    from xvector.corpora.synthetic.corpus import make_corpus

    corpus = tmp_path / "corpus"
    make_corpus(corpus, n_train_speakers=4, n_train_utts=4, n_test_speakers=3, n_test_utts=3,
                         n_dev_speakers=3, n_dev_utts=3, min_sec=1.0, max_sec=1.5, seed=3, num_workers=1)
    overrides = ["experiment=synthetic_xvector_aam_warmup", "augment@data=synthetic",
                 f"paths.data_dir={corpus}", f"paths.output_dir={tmp_path / 'exp'}",
                 *[o for o in TINY_NET if not o.startswith("data.chunk_sec")], "data.chunk_sec=0.5",
                 "model.channels=[32,32,32,32,64]", "trainer.max_epochs=3",
                 f"ckpt_path={FIXTURES / 'last.ckpt'}", "trainer.enable_progress_bar=false", "logger=csv"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    metrics = train(cfg)
    assert "val/eer" in metrics
    import torch

    resumed = torch.load(tmp_path / "exp" / "checkpoints" / "last.ckpt", weights_only=False)
    assert (resumed["epoch"], resumed["global_step"]) == (2, 12)  # the fixture ended at epoch 1, step 8
