"""Enrolment maps and speaker-model trial lists."""

import pytest

from xvector.data.enrollment import (
    check_model_trials,
    enrollment_split,
    model_trials,
    read_enroll_map,
    write_enroll_map,
)
from xvector.data.lists import Trial


def test_map_round_trip_and_unsorted_input(tmp_path):
    path = tmp_path / "enroll.map"
    path.write_text("id00801-enroll id00801/a.wav id00801/b.wav\nid00800-enroll id00800/c.wav\n")
    got = read_enroll_map(path)  # CN-Celeb's order kept: the map need not be sorted
    assert got == {"id00801-enroll": ["id00801/a.wav", "id00801/b.wav"], "id00800-enroll": ["id00800/c.wav"]}
    write_enroll_map(tmp_path / "out.map", got)
    assert (tmp_path / "out.map").read_text().splitlines()[0] == "id00800-enroll id00800/c.wav"


@pytest.mark.parametrize("text, message", [
    ("m1 u1\nm2\n", r"enroll.map:2: expected '<model> <utt1>"),
    ("m1 u1\nm1 u2\n", r"enroll.map:2: model 'm1' is listed twice"),
    ("m1 u1 u2 u1\n", r"enroll.map:1: model 'm1' lists utterance 'u1' twice"),
    ("", r"enroll.map: enrolment map is empty"),
    ("m1 u1\n\nm2 u2\n", r"enroll.map:2: empty line"),
])
def test_bad_maps_are_named(tmp_path, text, message):
    (tmp_path / "enroll.map").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_enroll_map(tmp_path / "enroll.map")


def test_trials_must_name_mapped_models():
    check_model_trials([Trial("m1", "u", True)], {"m1": ["a"]})
    with pytest.raises(ValueError, match=r"lst:2: speaker model 'm9' is not in the enrolment map"):
        check_model_trials([Trial("m1", "u", True), Trial("m9", "u", False)], {"m1": ["a"]}, "lst")


def test_split_enrols_n_per_speaker_and_leaves_unknown_speakers_out():
    utt2spk = {f"s{s}-u{u}": f"s{s}" for s in range(5) for u in range(4)}
    split = enrollment_split(utt2spk, n_enroll=3, n_unknown=2, seed=1)
    assert len(split.enroll_map) == 3 and len(split.unknown) == 2
    assert set(split.enroll_map).isdisjoint(split.unknown)
    assert all(len(u) == 3 and {utt2spk[x] for x in u} == {m} for m, u in split.enroll_map.items())
    enrolled = {u for us in split.enroll_map.values() for u in us}
    assert set(split.queries) == set(utt2spk) - enrolled and len(split.queries) == 3 * 1 + 2 * 4
    assert enrollment_split(utt2spk, 3, 2, seed=1) == split  # a function of the seed
    trials = model_trials(split.enroll_map, split.queries, utt2spk)
    assert len(trials) == 3 * 11 and sum(t.target for t in trials) == 3
    assert all(t.target == (utt2spk[t.test] == t.enroll) for t in trials)
    with pytest.raises(ValueError, match="speaker 's0' has 4 utterances: enrolling 4 leaves no query"):
        enrollment_split(utt2spk, n_enroll=4)
    with pytest.raises(ValueError, match="need 0 <= n_unknown < 5"):
        enrollment_split(utt2spk, 1, n_unknown=5)
