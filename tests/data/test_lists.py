import pytest

from xvector.data.lists import (
    Trial,
    load_data_dir,
    read_kaldi_map,
    read_spk2utt,
    read_trials,
    read_wav_scp,
    utt2spk_to_spk2utt,
    write_kaldi_map,
    write_trials,
)


def _write(path, text):
    path.write_text(text)
    return path


def test_roundtrip_sorted_in_c_locale(tmp_path):
    mapping = {"b": "2", "B": "1", "a_1": "x y"}
    write_kaldi_map(tmp_path / "m", mapping)
    assert (tmp_path / "m").read_text() == "B 1\na_1 x y\nb 2\n"  # C order: uppercase first
    assert read_kaldi_map(tmp_path / "m") == {"B": "1", "a_1": "x y", "b": "2"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("a 1\na 2\n", r"m:2: duplicate id 'a'"),
        ("b 1\na 2\n", r"m:2: id 'a' is not sorted"),
        ("a 1\n\nb 2\n", r"m:2: empty line"),
        ("a\n", r"m:1: expected '<key> <value>'"),
    ],
)
def test_read_kaldi_map_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_kaldi_map(_write(tmp_path / "m", text))


def test_missing_list_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_kaldi_map(tmp_path / "nope")


def test_wav_scp_missing_file_and_relative_paths(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    scp = _write(tmp_path / "wav.scp", "u1 a.wav\nu2 missing.wav\n")
    with pytest.raises(ValueError, match=r"wav.scp:2: audio file for 'u2' does not exist"):
        read_wav_scp(scp)
    assert read_wav_scp(scp, check_exists=False)["u1"] == tmp_path / "a.wav"
    with pytest.raises(ValueError, match="pipe commands"):
        read_wav_scp(_write(tmp_path / "p.scp", "u1 sox a.wav -t wav - |\n"), check_exists=False)


def test_data_dir_cross_check(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    _write(tmp_path / "wav.scp", "u1 a.wav\n")
    _write(tmp_path / "utt2spk", "u1 s1\nu2 s1\n")
    with pytest.raises(ValueError, match=r"wav.scp: no audio for utterance 'u2'"):
        load_data_dir(tmp_path)
    _write(tmp_path / "utt2spk", "u0 s1\n")
    with pytest.raises(ValueError, match=r"utt2spk: no speaker for utterance 'u1'"):
        load_data_dir(tmp_path)
    _write(tmp_path / "utt2spk", "u1 s1\n")
    d = load_data_dir(tmp_path)
    assert d.utts == ["u1"] and d.speakers == ["s1"]


def test_trials_roundtrip_and_errors(tmp_path):
    write_trials(tmp_path / "trials", [("a", "b", True), Trial("a", "c", False)])
    assert read_trials(tmp_path / "trials") == [Trial("a", "b", True), Trial("a", "c", False)]
    with pytest.raises(ValueError, match=r"t:2: expected"):
        read_trials(_write(tmp_path / "t", "a b target\na c maybe\n"))
    with pytest.raises(ValueError, match="empty"):
        read_trials(_write(tmp_path / "e", ""))


def test_spk2utt(tmp_path):
    spk2utt = utt2spk_to_spk2utt({"s2-1": "s2", "s1-2": "s1", "s1-1": "s1"})
    assert spk2utt == {"s1": ["s1-1", "s1-2"], "s2": ["s2-1"]}
    write_kaldi_map(tmp_path / "spk2utt", spk2utt)
    assert read_spk2utt(tmp_path / "spk2utt") == spk2utt


def test_atomic_write_leaves_no_temporary(tmp_path):
    write_kaldi_map(tmp_path / "m", {"a": "1"})
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    with pytest.raises(ValueError, match="whitespace"):
        write_kaldi_map(tmp_path / "m", {"a b": "1"})
    assert (tmp_path / "m").read_text() == "a 1\n"  # the old file survives a failed write


def test_non_utf8_line_is_named(tmp_path):
    path = tmp_path / "utt2spk"
    path.write_bytes(b"a s1\nb \xff\xfe\n")
    with pytest.raises(ValueError, match=r"utt2spk:2: not UTF-8 text"):
        read_kaldi_map(path)
    path.write_bytes(b"a b target\n\xffc d nontarget\n")
    with pytest.raises(ValueError, match=r"utt2spk:2: not UTF-8 text"):
        read_trials(path)


def test_crlf_and_unicode_spaces(tmp_path):
    path = _write(tmp_path / "m", "")
    path.write_bytes(b"a 1\r\nb 2\r\n")
    assert read_kaldi_map(path) == {"a": "1", "b": "2"}
    # Only ASCII whitespace separates fields (as in Kaldi): a no-break space belongs to the value.
    path.write_bytes("a x\u00a0y\n".encode())
    assert read_kaldi_map(path) == {"a": "x\u00a0y"}


def test_trials_one_class(tmp_path):
    path = _write(tmp_path / "t", "a b target\na c target\n")
    assert len(read_trials(path)) == 2  # the default: readable (e.g. to score target trials only)
    with pytest.raises(ValueError, match=r"t: only target trials \(2\); EER and minDCF need both classes"):
        read_trials(path, require_both_classes=True)
    _write(path, "a b nontarget\n")
    with pytest.raises(ValueError, match=r"t: only nontarget trials \(1\)"):
        read_trials(path, require_both_classes=True)


@pytest.mark.parametrize("value", ["", "x\ny", " x", "x\t"])
def test_write_refuses_values_that_would_not_read_back(tmp_path, value):
    with pytest.raises(ValueError, match=r"m: value .* of id 'a' is empty, spans lines or has surrounding"):
        write_kaldi_map(tmp_path / "m", {"a": value})
    assert not (tmp_path / "m").exists()


def test_write_trials_refuses_bad_ids(tmp_path):
    with pytest.raises(ValueError, match=r"t: id 'a b' is empty or contains whitespace"):
        write_trials(tmp_path / "t", [("a b", "c", True)])
    assert not (tmp_path / "t").exists()
