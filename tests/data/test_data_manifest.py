"""Every dataset layout edgekd reads, in its genuine on-disk format, and every way it can be wrong."""

import io
import pickle
import shutil

import pytest
from datasets import bad_videos, make_hmdb51, make_ucf101
from rich.console import Console
from videos import moving_square, write_video

from edgekd.data.layouts import find_video_root
from edgekd.data.manifest import Manifest, SkippedVideos, VideoEntry, default_data_spec, load_dataset
from edgekd.errors import DataError
from edgekd.report import Reporter

UCF_CLASSES = ["ApplyEyeMakeup", "Archery", "BabyCrawling"]
HMDB_CLASSES = ["brush_hair", "cartwheel"]


def _recording_reporter():
    buf = io.StringIO()
    return Reporter(Console(file=buf, width=60, soft_wrap=True)), buf


@pytest.fixture(scope="module")
def avi(tmp_path_factory):
    """One real MPEG-4 part 2 .avi (as UCF101/HMDB51 ship); datasets copy it under many names."""
    return write_video(tmp_path_factory.mktemp("src") / "clip.avi", moving_square(8, 32, 32))


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("src") / "clip.mp4", moving_square(8, 32, 32))


def _ucf101(root, avi, extra_train_line=None, extra_test_line=None):
    """UCF101 as downloaded: UCF-101/<Class>/v_<Class>_gXX_cYY.avi + ucfTrainTestlist/ (CRLF lines)."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    train, test = [], []
    for ci, c in enumerate(UCF_CLASSES, 1):
        for g in (1, 2, 3):
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            (root / "UCF-101" / c).mkdir(parents=True, exist_ok=True)
            shutil.copy(avi, root / "UCF-101" / rel)
            (test if g == 1 else train).append(rel if g == 1 else f"{rel} {ci}")
    train += [extra_train_line] if extra_train_line else []
    test += [extra_test_line] if extra_test_line else []
    (lists / "classInd.txt").write_bytes("".join(f"{i} {c}\r\n" for i, c in enumerate(UCF_CLASSES, 1)).encode())
    (lists / "trainlist01.txt").write_bytes("".join(f"{x}\r\n" for x in train).encode())
    (lists / "testlist01.txt").write_bytes("".join(f"{x}\r\n" for x in test).encode())
    return root


def _hmdb51(root, avi, extra_line=None):
    """HMDB51 as downloaded: hmdb51_org/<class>/<video>.avi + testTrainMulti_7030_splits/<class>_test_splitN.txt."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for c in HMDB_CLASSES:
        (root / "hmdb51_org" / c).mkdir(parents=True)
        lines = []
        for k, mark in enumerate([1, 1, 2, 0]):
            name = f"{c}_video_{k}_u_nm_np1_fr_goo_0.avi"
            shutil.copy(avi, root / "hmdb51_org" / c / name)
            lines.append(f"{name} {mark} ")  # the real files carry a trailing space
        lines += [extra_line] if extra_line and c == HMDB_CLASSES[0] else []
        for n in (1, 2, 3):
            (splits / f"{c}_test_split{n}.txt").write_text("\n".join(lines) + "\n")
    return root


# -- folder-per-class --------------------------------------------------------------------------------

def test_folder_per_class_gets_a_deterministic_split(tmp_path, mp4):
    for c in ("walk", "run", "jump"):
        for k in range(5):
            (tmp_path / c).mkdir(exist_ok=True)
            shutil.copy(mp4, tmp_path / c / f"{c}{k}.mp4")
    m = load_dataset(tmp_path)
    assert m.class_names == ["jump", "run", "walk"] and len(m) == 15
    for label in range(3):
        splits = [e.split for e in m.entries if e.label == label]
        assert splits.count("test") == 1 and splits.count("train") == 4
    assert m.entries[0].video_id == "jump/jump0.mp4"
    assert [e.split for e in load_dataset(tmp_path).entries] == [e.split for e in m.entries]


def test_folder_with_train_and_test_subfolders(tmp_path, mp4):
    for split, n in (("train", 3), ("test", 1)):
        for c in ("a", "b"):
            for k in range(n):
                (tmp_path / split / c).mkdir(parents=True, exist_ok=True)
                shutil.copy(mp4, tmp_path / split / c / f"{k}.mp4")
    m = load_dataset(tmp_path)
    assert m.class_names == ["a", "b"]
    assert len(m.split("train")) == 6 and len(m.split("test")) == 2


def test_zero_byte_video_is_skipped_with_a_warning(tmp_path, mp4):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        shutil.copy(mp4, tmp_path / c / "good.mp4")
        shutil.copy(mp4, tmp_path / c / "good2.mp4")
    (tmp_path / "a" / "empty.mp4").write_bytes(b"")
    reporter, buf = _recording_reporter()
    m = load_dataset(tmp_path, reporter=reporter)
    assert len(m) == 4 and all(e.path.name != "empty.mp4" for e in m.entries)
    assert dict(m.skipped) == {str(tmp_path / "a" / "empty.mp4"): "empty (0 bytes)"}
    assert buf.getvalue() == f"warning: skipping 1 video(s) that cannot be used: {tmp_path / 'a' / 'empty.mp4'}: " \
                             f"empty (0 bytes)\n"
    assert m.split("train").skipped is m.skipped  # one record per run, whatever subset finds a bad video


def test_skipped_videos_are_said_once_in_one_line_and_workers_get_no_console(tmp_path):
    reporter, buf = _recording_reporter()
    record = SkippedVideos([("a.avi", "empty (0 bytes)")])
    record.report_to(reporter)
    assert record.add([("b.avi", "truncated"), ("c.avi", "not a video"), ("a.avi", "empty (0 bytes)")]) == [
        ("b.avi", "truncated"), ("c.avi", "not a video")]
    assert record.add([("b.avi", "truncated")]) == []
    assert buf.getvalue().splitlines() == ["warning: skipping 1 video(s) that cannot be used: a.avi: empty (0 bytes)",
                                           "warning: skipping 2 video(s) that cannot be used: b.avi: truncated; "
                                           "c.avi: not a video"]
    copy = pickle.loads(pickle.dumps(record))  # as a DataLoader worker gets it
    assert copy.reporter is None and "c.avi" in copy and len(copy) == 3
    assert record.write(tmp_path).read_text() == "a.avi\tempty (0 bytes)\nb.avi\ttruncated\nc.avi\tnot a video\n"
    assert SkippedVideos().write(tmp_path / "none") is None


# -- UCF101 --------------------------------------------------------------------------------------------

def test_ucf101_split_files(tmp_path, avi):
    root = _ucf101(tmp_path, avi)
    m = load_dataset(root)
    assert m.class_names == UCF_CLASSES
    assert len(m.split("train")) == 6 and len(m.split("test")) == 3
    e = m.by_id()["Archery/v_Archery_g02_c01.avi"]
    assert e.label == 1 and e.split == "train" and e.path.is_file()
    # the same dataset when pointed at the split files themselves
    for f in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        assert load_dataset(root / "ucfTrainTestlist" / f).fingerprint() == m.fingerprint()


def test_ucf101_missing_video_names_file_and_line(tmp_path, avi):
    root = _ucf101(tmp_path, avi, extra_train_line="Archery/v_Archery_g09_c04.avi 2")
    with pytest.raises(DataError, match=r"trainlist01\.txt:7: video Archery/v_Archery_g09_c04\.avi does not exist") as e:
        load_dataset(root)
    assert e.value.hint


def test_ucf101_class_not_in_classind_names_file_and_line(tmp_path, avi):
    root = _ucf101(tmp_path, avi, extra_test_line="Basketball/v_Basketball_g01_c01.avi")
    with pytest.raises(DataError, match=r"testlist01\.txt:4: class 'Basketball'.*not in classInd\.txt"):
        load_dataset(root)


def test_ucf101_label_that_contradicts_classind(tmp_path, avi):
    root = _ucf101(tmp_path, avi, extra_train_line="Archery/v_Archery_g01_c01.avi 3")
    with pytest.raises(DataError, match=r"trainlist01\.txt:7: label '3'"):
        load_dataset(root)


def test_ucf101_missing_split_number(tmp_path, avi):
    root = _ucf101(tmp_path, avi)
    with pytest.raises(DataError, match="trainlist02.txt does not exist"):
        load_dataset(root, split=2)


# -- HMDB51 --------------------------------------------------------------------------------------------

def test_hmdb51_split_files(tmp_path, avi):
    m = load_dataset(_hmdb51(tmp_path, avi))
    assert m.class_names == HMDB_CLASSES
    assert len(m.split("train")) == 4 and len(m.split("test")) == 2  # marker 0 = not in this split
    assert all(e.path.is_file() for e in m.entries)
    assert "cartwheel/cartwheel_video_2_u_nm_np1_fr_goo_0.avi" in {e.video_id for e in m.split("test").entries}


def test_hmdb51_bad_marker_and_missing_video(tmp_path, avi):
    with pytest.raises(DataError, match=r"brush_hair_test_split1\.txt:5: expected"):
        load_dataset(_hmdb51(tmp_path / "a", avi, extra_line="x.avi 7"))
    with pytest.raises(DataError, match=r"brush_hair_test_split1\.txt:5: video brush_hair/ghost\.avi does not exist"):
        load_dataset(_hmdb51(tmp_path / "b", avi, extra_line="ghost.avi 1"))


# -- where the videos of split files are ----------------------------------------------------------------

@pytest.mark.parametrize("video_dir", ["UCF-101", "UCF101", "videos", "UCF101/UCF-101"])
def test_ucf101_finds_its_videos_whatever_the_folder_is_called(tmp_path, video_dir):
    split_dir = make_ucf101(tmp_path, per_class=2, frames=8, size=(32, 48), video_dir=video_dir, bad=False)
    (tmp_path / "notes").mkdir()  # an unrelated sibling folder
    m = load_dataset(tmp_path)
    assert m.root == tmp_path / video_dir and len(m) == 6
    assert load_dataset(split_dir / "trainlist01.txt").root == tmp_path / video_dir


def test_hmdb51_finds_its_videos_beside_the_split_folder(tmp_path):
    split_dir = make_hmdb51(tmp_path / "data", per_class=4, frames=8, size=(32, 48), video_dir="hmdb51")
    m = load_dataset(split_dir)
    assert m.root == tmp_path / "data" / "hmdb51" and m.class_names == ["brush_hair", "cartwheel", "climb_stairs"]
    # markers 1 1 2 0 per class; the three broken files are marked 1 and the empty one is skipped at load
    assert len(m.split("test")) == 3 and len(m.split("train")) == 6 + 2
    assert dict(m.skipped) == {str(bad_videos(split_dir)["empty"]): "empty (0 bytes)"}


def test_the_folder_with_most_class_folders_wins(tmp_path):
    split_dir = make_ucf101(tmp_path, per_class=2, frames=8, size=(32, 48), video_dir="UCF-101", bad=False)
    (tmp_path / "a_partial_copy" / "Archery").mkdir(parents=True)  # sorts first, holds fewer classes
    assert find_video_root(split_dir, ["ApplyEyeMakeup", "Archery", "BabyCrawling"]) == tmp_path / "UCF-101"


def test_video_root_option_and_its_errors_name_the_flag(tmp_path):
    split_dir = make_ucf101(tmp_path / "lists", per_class=2, frames=8, size=(32, 48), bad=False)
    shutil.move(tmp_path / "lists" / "UCF-101", tmp_path / "elsewhere")
    with pytest.raises(DataError, match="no folder beside it holds the class folders") as e:
        load_dataset(split_dir)
    assert "--video-root" in e.value.hint
    assert load_dataset(split_dir, video_root=tmp_path / "elsewhere").root == tmp_path / "elsewhere"
    with pytest.raises(DataError, match="--video-root .*nowhere is not a folder") as e:
        load_dataset(split_dir, video_root=tmp_path / "nowhere")
    with pytest.raises(DataError, match="video ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi does not exist") as e:
        load_dataset(split_dir, video_root=tmp_path)
    assert "--video-root" in e.value.hint


# -- CSV -----------------------------------------------------------------------------------------------

def test_csv_with_header_and_split(tmp_path, mp4):
    for k in range(4):
        shutil.copy(mp4, tmp_path / f"v{k}.mp4")
    (tmp_path / "list.csv").write_text("path,label,split\nv0.mp4,wave,train\nv1.mp4,wave,test\n"
                                       "v2.mp4,clap,train\nv3.mp4,clap,val\n")
    m = load_dataset(tmp_path / "list.csv")
    assert m.class_names == ["clap", "wave"]
    assert [e.split for e in m.entries] == ["train", "test", "train", "test"]  # val counts as test


def test_csv_without_header_or_split(tmp_path, mp4):
    for k in range(6):
        shutil.copy(mp4, tmp_path / f"v{k}.mp4")
    (tmp_path / "list.csv").write_text("".join(f"v{k}.mp4,{'ab'[k % 2]}\n" for k in range(6)))
    m = load_dataset(tmp_path)  # a folder holding just one CSV and videos
    assert len(m) == 6 and {e.split for e in m.entries} == {"train", "test"}


def test_csv_missing_column_names_file_and_line(tmp_path, mp4):
    shutil.copy(mp4, tmp_path / "v0.mp4")
    (tmp_path / "list.csv").write_text("path,label\nv0.mp4,wave\nv0.mp4\n")
    with pytest.raises(DataError, match=r"list\.csv:3: missing label column"):
        load_dataset(tmp_path / "list.csv")
    (tmp_path / "nolabel.csv").write_text("path,split\nv0.mp4,train\n")
    with pytest.raises(DataError, match=r"nolabel\.csv:1: header has no 'label' column"):
        load_dataset(tmp_path / "nolabel.csv")


def test_csv_naming_a_missing_video(tmp_path):
    (tmp_path / "list.csv").write_text("path,label\nghost.mp4,wave\n")
    with pytest.raises(DataError, match=r"list\.csv:2: video ghost\.mp4 does not exist"):
        load_dataset(tmp_path / "list.csv")


# -- Kinetics ------------------------------------------------------------------------------------------

def test_kinetics_csv_finds_files_in_every_accepted_layout(tmp_path, mp4):
    rows = [("abseiling", "0347ZoDXyP0", 14, 24, "train"), ("air drumming", "03V2idM7_KY", 4, 14, "train"),
            ("abseiling", "0aa_ExnsqQM", 0, 10, "validate"), ("air drumming", "zzGone00000", 30, 40, "train")]
    (tmp_path / "train" / "abseiling").mkdir(parents=True)
    shutil.copy(mp4, tmp_path / "train" / "abseiling" / "0347ZoDXyP0_000014_000024.mp4")
    (tmp_path / "air_drumming").mkdir()                                # label folder with underscores
    shutil.copy(mp4, tmp_path / "air_drumming" / "03V2idM7_KY_000004_000014.mp4")
    shutil.copy(mp4, tmp_path / "0aa_ExnsqQM_000000_000010.mp4")       # flat
    csv = tmp_path / "kinetics400.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n" + "".join(f"{a},{b},{c},{d},{e}\n" for a, b, c, d, e in rows))
    reporter, buf = _recording_reporter()
    m = load_dataset(csv, reporter=reporter)
    assert "zzGone00000_000030_000040" in buf.getvalue()  # vanished from YouTube: one warning line
    assert len(buf.getvalue().splitlines()) == 1
    assert m.class_names == ["abseiling", "air drumming"]
    assert len(m) == 3 and [e.split for e in m.entries] == ["train", "train", "test"]


def test_kinetics_csv_missing_column(tmp_path):
    (tmp_path / "k.csv").write_text("label,youtube_id,time_start,split\nabseiling,x,1,train\n")
    with pytest.raises(DataError, match=r"k\.csv:1: Kinetics header lacks column\(s\) time_end"):
        load_dataset(tmp_path / "k.csv")


def test_kinetics_csv_with_no_videos_at_all(tmp_path):
    (tmp_path / "k.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,x,1,11,train\n")
    with pytest.raises(DataError, match="none of its 1 rows has a video file"):
        load_dataset(tmp_path / "k.csv")


# -- our manifest.json ---------------------------------------------------------------------------------

def test_manifest_json_round_trip_keeps_captions_and_defaults(tmp_path, mp4):
    (tmp_path / "v").mkdir()
    shutil.copy(mp4, tmp_path / "v" / "a.mp4")
    shutil.copy(mp4, tmp_path / "v" / "b.mp4")
    m = Manifest(tmp_path, ["left", "right"],
                 [VideoEntry(tmp_path / "v" / "a.mp4", 0, "train", "a cube moves left", "a"),
                  VideoEntry(tmp_path / "v" / "b.mp4", None, "test", None, "b")],
                 defaults={"hflip": False, "frames": 4}, meta={"note": "x"})
    path = m.save(tmp_path / "manifest.json")
    assert '"path": "v/a.mp4"' in path.read_text()  # relative: the folder can move
    back = load_dataset(tmp_path)
    assert back.entries == m.entries and back.defaults == m.defaults and back.meta == m.meta
    assert back.fingerprint() == m.fingerprint()
    assert default_data_spec(back).frames == 4


def test_manifest_json_errors(tmp_path):
    (tmp_path / "bad.json").write_text('{"format": "edgekd-manifest",\n "videos": [\n')
    with pytest.raises(DataError, match=r"bad\.json:3: invalid JSON"):
        load_dataset(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(DataError, match="not an edgekd manifest"):
        load_dataset(tmp_path / "other.json")


def test_split_and_fingerprint(tiny_manifest):
    train, test = tiny_manifest.split("train"), tiny_manifest.split("test")
    assert len(train) + len(test) == len(tiny_manifest) and train.class_names == tiny_manifest.class_names
    assert len({tiny_manifest.fingerprint(), train.fingerprint(), test.fingerprint()}) == 3
    with pytest.raises(DataError, match="unknown split"):
        tiny_manifest.split("holdout")


# -- nothing usable ------------------------------------------------------------------------------------

def test_nonexistent_path(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        load_dataset(tmp_path / "nope")
    assert str(tmp_path / "nope") in e.value.message and e.value.hint


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="empty folder"):
        load_dataset(tmp_path)


def test_folder_without_class_subfolders(tmp_path, mp4):
    shutil.copy(mp4, tmp_path / "loose.mp4")
    with pytest.raises(DataError, match="no videos found in class subfolders") as e:
        load_dataset(tmp_path)
    assert "own subfolder" in e.value.hint


def test_unknown_file_type(tmp_path, mp4):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown dataset file type"):
        load_dataset(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="single video"):
        load_dataset(mp4)
