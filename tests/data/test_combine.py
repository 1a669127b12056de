import pytest

from scripts.combine_data_dirs import main
from xvector.data.combine import combine_data_dirs
from xvector.data.lists import load_data_dir, read_kaldi_map


def test_prefixes_keep_speakers_apart_and_subsampling_is_seeded(noise_dir, tmp_path):
    a = noise_dir(tmp_path / "a", {"s1": 3, "s2": 3}, seed=0)
    b = noise_dir(tmp_path / "b", {"s1": 5, "s2": 5, "s3": 5, "s4": 5}, seed=1)
    summary = combine_data_dirs([a, b], tmp_path / "mix", prefixes=["tgt", "src"], max_speakers=[None, 2],
                                max_utts_per_speaker=[None, 2], seed=3)
    mix = load_data_dir(tmp_path / "mix")
    speakers = set(mix.utt2spk.values())
    assert summary == {"speakers": 4, "utterances": 6 + 4, "per_dir": [(2, 6), (2, 4)]}
    assert {"tgt-s1", "tgt-s2"} <= speakers and len({s for s in speakers if s.startswith("src-")}) == 2
    assert all(mix.wavs[u].is_file() for u in mix.utts)
    spk2utt = read_kaldi_map(tmp_path / "mix" / "spk2utt")
    assert len(spk2utt) == 4
    again = combine_data_dirs([a, b], tmp_path / "mix2", prefixes=["tgt", "src"], max_speakers=[None, 2],
                              max_utts_per_speaker=[None, 2], seed=3)
    assert again == summary and (tmp_path / "mix" / "utt2spk").read_text() == (tmp_path / "mix2" / "utt2spk").read_text()


def test_clashing_ids_and_bad_arguments_are_errors(noise_dir, tmp_path):
    a = noise_dir(tmp_path / "a", {"s1": 2}, seed=0)
    with pytest.raises(ValueError, match="also in an earlier data dir"):
        combine_data_dirs([a, a], tmp_path / "mix")
    with pytest.raises(ValueError, match="one entry per data dir"):
        combine_data_dirs([a], tmp_path / "mix", prefixes=["x", "y"])
    with pytest.raises(SystemExit, match="integers or 'all'"):
        main([str(a), "--out", str(tmp_path / "m"), "--max-speakers", "lots"])
    assert main([str(a), str(a), "--out", str(tmp_path / "m"), "--prefix", "x", "y"])["speakers"] == 2
