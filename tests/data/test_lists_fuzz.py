"""Property-based tests of the Kaldi list and trial parsers: round trips, and junk never escapes
as anything but a ValueError naming the file (and the line, for a bad line)."""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xvector.data.lists import (
    Trial,
    read_kaldi_map,
    read_spk2utt,
    read_trials,
    read_wav_scp,
    write_kaldi_map,
    write_trials,
)

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

chars = st.characters(blacklist_categories=("Cs",))  # any encodable character
ids = st.text(chars, min_size=1, max_size=12).filter(lambda s: not any(c.isspace() for c in s))
ascii_space = " \t\n\r\f\v"
values = st.text(chars.filter(lambda c: c != "\n"), min_size=1, max_size=20).filter(
    lambda s: s == s.strip(ascii_space)
)


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@SETTINGS
@given(mapping=st.dictionaries(ids, values, max_size=20))
def test_map_roundtrip(workdir, mapping):
    write_kaldi_map(workdir / "map", mapping)
    if mapping:
        assert read_kaldi_map(workdir / "map") == mapping


@SETTINGS
@given(mapping=st.dictionaries(ids, st.lists(ids, min_size=1, max_size=5), min_size=1, max_size=10))
def test_spk2utt_roundtrip(workdir, mapping):
    write_kaldi_map(workdir / "spk2utt", mapping)
    assert read_spk2utt(workdir / "spk2utt") == mapping


@SETTINGS
@given(mapping=st.dictionaries(ids, values.filter(lambda v: not v.endswith("|")), min_size=1, max_size=10))
def test_wav_scp_roundtrip(workdir, mapping):
    write_kaldi_map(workdir / "wav.scp", mapping)
    expected = {k: workdir / v for k, v in mapping.items()}  # relative to the list's folder
    assert read_wav_scp(workdir / "wav.scp", check_exists=False) == expected


@SETTINGS
@given(trials=st.lists(st.builds(Trial, ids, ids, st.booleans()), min_size=1, max_size=20))
def test_trials_roundtrip(workdir, trials):
    write_trials(workdir / "trials", trials)
    assert read_trials(workdir / "trials") == trials


READERS = {
    "map": read_kaldi_map,
    "spk2utt": read_spk2utt,
    "wav.scp": lambda p: read_wav_scp(p, check_exists=False),
    "wav.scp-exists": read_wav_scp,
    "trials": read_trials,
    "trials-both": lambda p: read_trials(p, require_both_classes=True),
}


@settings(SETTINGS, max_examples=300)
@given(content=st.binary(max_size=200) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
       reader=st.sampled_from(sorted(READERS)))
def test_arbitrary_content_raises_only_value_error_naming_the_file(workdir, content, reader):
    path = workdir / "junk"
    path.write_bytes(content)
    try:
        READERS[reader](path)
    except ValueError as err:
        assert str(err).startswith(f"{path}:"), str(err)
        assert "\n" not in str(err)


junk_map_lines = st.one_of(
    st.just(b""),                                                # empty line
    st.text(" \t\r", min_size=1, max_size=3).map(str.encode),   # whitespace only
    ids.map(lambda s: s.encode()),                               # a key without a value
    st.binary(min_size=1, max_size=8).map(lambda b: b"\xff" + b),  # not UTF-8
)


@SETTINGS
@given(mapping=st.dictionaries(ids, values, min_size=1, max_size=10), junk=junk_map_lines, data=st.data())
def test_junk_line_in_a_map_is_named(workdir, mapping, junk, data):
    write_kaldi_map(workdir / "m", mapping)
    lines = (workdir / "m").read_bytes().split(b"\n")[:-1]
    k = data.draw(st.integers(0, len(lines)))
    (workdir / "m").write_bytes(b"\n".join([*lines[:k], junk.replace(b"\n", b""), *lines[k:]]) + b"\n")
    with pytest.raises(ValueError, match=rf"^{_re(workdir / 'm')}:{k + 1}: "):
        read_kaldi_map(workdir / "m")


junk_trial_lines = st.one_of(
    st.just(b""),
    st.lists(ids, min_size=1, max_size=5).filter(lambda f: len(f) != 3).map(lambda f: " ".join(f).encode()),
    st.tuples(ids, ids, ids.filter(lambda s: s not in ("target", "nontarget"))).map(lambda f: " ".join(f).encode()),
    st.binary(min_size=1, max_size=8).map(lambda b: b"\xff" + b),
)


@SETTINGS
@given(trials=st.lists(st.builds(Trial, ids, ids, st.booleans()), min_size=1, max_size=10),
       junk=junk_trial_lines, data=st.data())
def test_junk_line_in_trials_is_named(workdir, trials, junk, data):
    write_trials(workdir / "t", trials)
    lines = (workdir / "t").read_bytes().split(b"\n")[:-1]
    k = data.draw(st.integers(0, len(lines)))
    (workdir / "t").write_bytes(b"\n".join([*lines[:k], junk.replace(b"\n", b""), *lines[k:]]) + b"\n")
    with pytest.raises(ValueError, match=rf"^{_re(workdir / 't')}:{k + 1}: "):
        read_trials(workdir / "t")


def _re(path: Path) -> str:
    import re

    return re.escape(str(path))
