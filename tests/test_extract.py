import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import TINY_NET
from xvector.embeddings import load_embeddings
from xvector.extract import embed_wav_scp, extract
from xvector.lit_module import load_embedder
from xvector.train import train


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_corpus, tmp_path_factory):
    from hydra import compose, initialize_config_dir

    from xvector import CONFIG_DIR

    out = tmp_path_factory.mktemp("run")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", [f"paths.data_dir={tiny_corpus}", f"paths.output_dir={out}", *TINY_NET,
                                "trainer.max_epochs=1", "trainer.limit_train_batches=2"])
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


def test_batched_equals_unbatched(tiny_corpus, tiny_checkpoint):
    embedder, _ = load_embedder(tiny_checkpoint)
    scp = tiny_corpus / "test" / "wav.scp"
    ids1, one = embed_wav_scp(embedder, scp, batch_size=1)
    ids8, eight = embed_wav_scp(embedder, scp, batch_size=8)
    assert ids1 == ids8
    cos = (one * eight).sum(1) / np.linalg.norm(one, axis=1) / np.linalg.norm(eight, axis=1)
    assert cos.min() >= 0.9999


def test_extract_cli_writes_npz(tiny_corpus, tiny_checkpoint, tmp_path):
    out = tmp_path / "emb" / "test.npz"
    cfg = OmegaConf.create(
        {"ckpt_path": str(tiny_checkpoint), "wav_scp": str(tiny_corpus / "test" / "wav.scp"),
         "output": str(out), "batch_size": 4, "num_workers": 0, "device": "cpu"}
    )
    extract(cfg)
    ids, emb = load_embeddings(out)
    assert len(ids) == 16 and emb.shape == (16, 16) and np.isfinite(emb).all()
    assert [p.name for p in out.parent.iterdir()] == ["test.npz"]  # no temporary left behind
