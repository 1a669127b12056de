"""VoxCeleb preparation on a tiny fake tree with VoxCeleb's exact layout (no download)."""

import importlib.util
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xvector.data.lists import load_data_dir, read_kaldi_map, read_trials
from xvector.data.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("prepare_voxceleb", REPO / "recipes/voxceleb/local/prepare_voxceleb.py")
prep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prep)

VOX1 = ["id10270/5r0dWxy17C8/00001.wav", "id10270/5r0dWxy17C8/00002.wav", "id10270/x6uYqmx31kE/00001.wav",
        "id10271/1gtz-CUIygI/00001.wav", "id10271/1gtz-CUIygI/00002.wav", "id10001/1zcIwhmdeo4/00001.wav"]
VOX2 = ["id00012/21Uxsk56VDQ/00001.m4a", "id00012/21Uxsk56VDQ/00002.m4a", "id00015/0fijmz4vTVU/00001.m4a"]
# Official format: <1|0> <enroll path> <test path>; "2" = the cleaned list.
TRIALS_O = ("1 id10270/5r0dWxy17C8/00001.wav id10270/x6uYqmx31kE/00001.wav\n"
            "0 id10270/5r0dWxy17C8/00002.wav id10271/1gtz-CUIygI/00001.wav\n")
TRIALS_H = "1 id10271/1gtz-CUIygI/00001.wav id10271/1gtz-CUIygI/00002.wav\n0 id10001/1zcIwhmdeo4/00001.wav id10270/5r0dWxy17C8/00001.wav\n"


def _audio(path: Path, seed: int, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = 0.1 * np.random.default_rng(seed).standard_normal((1600, channels)).astype(np.float32)
    sf.write(path, data, 16000, format="WAV")  # VoxCeleb2's fakes hold wav bytes under .m4a names


@pytest.fixture
def vox1(tmp_path):
    root = tmp_path / "voxceleb1"
    for i, rel in enumerate(VOX1):
        _audio(root / "wav" / rel, i)
    (root / "veri_test2.txt").write_text(TRIALS_O)
    (root / "list_test_hard.txt").write_text(TRIALS_H)
    return root


@pytest.fixture
def vox2(tmp_path):
    root = tmp_path / "voxceleb2"
    for i, rel in enumerate(VOX2):
        _audio(root / "dev" / "aac" / rel, 10 + i, channels=2)
    return root


@pytest.fixture
def fake_ffmpeg(tmp_path):
    """An 'ffmpeg' that decodes with soundfile and writes mono flac, with ffmpeg's arguments."""
    path = tmp_path / "bin" / "ffmpeg"
    path.parent.mkdir()
    path.write_text(f"""#!{sys.executable}
import sys, soundfile as sf
a = sys.argv[1:]
src, dst, rate = a[a.index("-i") + 1], a[-1], int(a[a.index("-ar") + 1])
assert a[a.index("-ac") + 1] == "1" and a[a.index("-f") + 1] == "flac"
try:
    data, sr = sf.read(src, dtype="float32", always_2d=True)
except Exception:
    sys.exit(f"{{src}}: Invalid data found when processing input")
sf.write(dst, data.mean(axis=1), rate, format="FLAC", subtype="PCM_16")
""")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_vox_utt_id():
    assert prep.vox_utt_id("id10270/5r0dWxy17C8/00001.wav") == "id10270-5r0dWxy17C8-00001"
    with pytest.raises(ValueError, match="expected <speaker>/<video>/<n>.wav"):
        prep.vox_utt_id("id10270/00001.wav")


def test_vox1_lists_and_trials(vox1, tmp_path):
    out = tmp_path / "data"
    assert prep.main(["--vox1", str(vox1), "--out", str(out)]) == 0
    data = load_data_dir(out / "vox1")
    assert data.utts[:2] == ["id10001-1zcIwhmdeo4-00001", "id10270-5r0dWxy17C8-00001"] and len(data.utts) == 6
    assert load_data_dir(out / "vox1_dev").speakers == ["id10001"]  # Vox1-O's test speakers removed
    o = read_trials(out / "vox1" / "trials_vox1_O_cleaned", require_both_classes=True)
    assert [(t.enroll, t.test, t.target) for t in o] == [
        ("id10270-5r0dWxy17C8-00001", "id10270-x6uYqmx31kE-00001", True),
        ("id10270-5r0dWxy17C8-00002", "id10271-1gtz-CUIygI-00001", False),
    ]
    assert read_trials(out / "vox1" / "trials") == o  # the default list: Vox1-O cleaned
    assert len(read_trials(out / "vox1" / "trials_vox1_H")) == 2
    assert not (out / "vox1" / "trials_vox1_E").exists()  # only the lists that were given
    report = validate_data_dir(out / "vox1", min_duration_sec=0.05)
    assert report.errors == 0, report.format()


@pytest.mark.parametrize(
    "line, message",
    [
        ("1 id10270/5r0dWxy17C8/00001.wav id10270/nope/00001.wav", r"veri_test2\.txt:2: utterance 'id10270-nope-00001' is not in"),
        ("target id10270/5r0dWxy17C8/00001.wav id10270/x6uYqmx31kE/00001.wav", r"veri_test2\.txt:2: expected '1\|0"),
        ("1 id10270/00001.wav id10270/x6uYqmx31kE/00001.wav", r"veri_test2\.txt:2: expected <speaker>/<video>"),
    ],
)
def test_bad_official_trial_lines_are_named(vox1, tmp_path, line, message, capsys):
    (vox1 / "veri_test2.txt").write_text(TRIALS_O.splitlines()[0] + "\n" + line + "\n")
    assert prep.main(["--vox1", str(vox1), "--out", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match=message):
        prep.read_vox_trials(vox1 / "veri_test2.txt", {"id10270-5r0dWxy17C8-00001", "id10270-x6uYqmx31kE-00001"})


def test_vox2_conversion_resumable(vox1, vox2, tmp_path, fake_ffmpeg, capsys):
    out, flac = tmp_path / "data", tmp_path / "vox2_flac"
    args = ["--vox1", str(vox1), "--vox2", str(vox2), "--vox2-flac", str(flac), "--out", str(out),
            "--jobs", "2", "--ffmpeg", fake_ffmpeg]
    assert prep.main(args) == 0
    assert "converted 3, already done 0, failed 0" in capsys.readouterr().out
    data = load_data_dir(out / "vox2_dev")
    assert data.utts == ["id00012-21Uxsk56VDQ-00001", "id00012-21Uxsk56VDQ-00002", "id00015-0fijmz4vTVU-00001"]
    info = sf.info(str(data.wavs["id00015-0fijmz4vTVU-00001"]))
    assert (info.format, info.channels, info.samplerate, info.frames) == ("FLAC", 1, 16000, 1600)
    assert data.wavs["id00012-21Uxsk56VDQ-00001"] == flac / "dev/id00012/21Uxsk56VDQ/00001.flac"
    both = read_kaldi_map(out / "vox2_dev_vox1_dev" / "utt2spk")
    assert set(both.values()) == {"id00012", "id00015", "id10001"}

    # Resume: an existing target is kept; a deleted one is converted again.
    (flac / "dev/id00012/21Uxsk56VDQ/00002.flac").unlink()
    assert prep.main(args) == 0
    assert "converted 1, already done 2, failed 0" in capsys.readouterr().out

    # A file ffmpeg cannot decode: named, the others kept, no temporary left, exit 1.
    (vox2 / "dev/aac/id00015/0fijmz4vTVU/00002.m4a").write_bytes(b"\x00" * 100)
    assert prep.main(args) == 1
    err = capsys.readouterr().err
    assert "converted 0, already done 3, failed 1 (first: " in err and "00002.m4a: " in err
    assert not list(flac.rglob(".*.tmp")) and not (flac / "dev/id00015/0fijmz4vTVU/00002.flac").exists()


def test_missing_ffmpeg_and_layout(vox2, tmp_path):
    with pytest.raises(ValueError, match=r"no-such-ffmpeg: executable not found; install it \(apt-get install ffmpeg\)"):
        prep.prepare_vox2(vox2, tmp_path / "f", tmp_path / "o", ffmpeg="no-such-ffmpeg")
    with pytest.raises(ValueError, match=r"dev/aac: not a folder"):
        prep.prepare_vox2(tmp_path, tmp_path / "f", tmp_path / "o")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
def test_real_ffmpeg_converts(vox2, tmp_path):
    # A real AAC m4a (44.1 kHz stereo, as VoxCeleb2's are AAC) beside the wav-bytes fakes.
    m4a = vox2 / "dev/aac/id00012/21Uxsk56VDQ/00001.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=300:duration=1:sample_rate=44100", "-ac", "2", "-c:a", "aac", "-f", "mp4",
                    str(m4a)], check=True)
    summary, utts = prep.prepare_vox2(vox2, tmp_path / "f", tmp_path / "o", jobs=2)
    assert summary.startswith("converted 3") and len(utts) == 3
    info = sf.info(str(utts[0][2]))
    assert (info.format, info.samplerate, info.channels) == ("FLAC", 16000, 1)
    assert abs(info.frames - 16000) < 2000  # 1 s, give or take the AAC priming samples


def _fake_corpora(tmp_path: Path, vox2_speakers: int, utts: int, seconds: float) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    vox1, vox2 = tmp_path / "voxceleb1", tmp_path / "voxceleb2"
    spk1 = ["id10001", "id10002", "id10270", "id10271", "id10272"]
    for root, speakers, ext in [(vox1 / "wav", spk1, "wav"), (vox2 / "dev/aac", [f"id{n:05d}" for n in range(12, 12 + vox2_speakers)], "m4a")]:
        for spk in speakers:
            for u in range(utts):
                path = root / spk / f"vid{u % 2}" / f"{u + 1:05d}.{ext}"
                path.parent.mkdir(parents=True, exist_ok=True)
                wav = 0.1 * rng.standard_normal(int(16000 * seconds)).astype(np.float32)
                sf.write(path, wav, 16000, format="WAV")
    lines = [f"{int(a[:7] == b[:7])} {a} {b}" for a in ("id10270/vid0/00001.wav", "id10271/vid1/00002.wav")
             for b in ("id10270/vid1/00002.wav", "id10272/vid0/00001.wav", "id10271/vid0/00003.wav")]
    (vox1 / "veri_test2.txt").write_text("\n".join(lines) + "\n")
    return vox1, vox2


def test_run_sh_prepare_and_validate_stages(tmp_path, fake_ffmpeg):
    import os

    vox1, vox2 = _fake_corpora(tmp_path, vox2_speakers=3, utts=3, seconds=0.2)
    env = dict(os.environ, PATH=f"{Path(fake_ffmpeg).parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = ["bash", "recipes/voxceleb/run.sh", "--vox1", str(vox1), "--vox2", str(vox2), "--data", str(tmp_path / "data"),
           "--exp", str(tmp_path / "exp"), "--jobs", "2", "--stop_stage", "1"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "converted 9, already done 0, failed 0" in r.stdout
    assert r.stdout.count("OK: 0 errors") == 2  # vox2_dev and vox1 (short files are warnings)
    assert len(read_trials(tmp_path / "data/vox1/trials_vox1_O_cleaned")) == 6


@pytest.mark.slow
def test_run_sh_end_to_end_on_fake_corpora(tmp_path, fake_ffmpeg):
    import os

    from tests.conftest import TINY_NET

    vox1, vox2 = _fake_corpora(tmp_path, vox2_speakers=6, utts=4, seconds=1.0)
    env = dict(os.environ, PATH=f"{Path(fake_ffmpeg).parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = ["bash", "recipes/voxceleb/run.sh", "--vox1", str(vox1), "--vox2", str(vox2), "--data", str(tmp_path / "data"),
           "--exp", str(tmp_path / "exp"), "--jobs", "2", "--num_avg", "2", "--",
           *TINY_NET, "augment@data=none", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "exp/vox2_xvector_aam"
    assert f"checkpoint: {run}/avg2.ckpt" in r.stdout
    table = (tmp_path / "exp/results_vox2_xvector_aam_cosine.md").read_text()
    assert "vox1_O_cleaned, cosine |" in table and "vox1_O_cleaned, cosine + AS-norm |" in table
