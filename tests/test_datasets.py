"""The Replay-Attack, MSU-MFSD and OULU-NPU loaders: naming rules, protocols and the
published counts (bob.db.replay, bob.db.msu_mfsd_mod, bob.db.oulunpu), and the index of
a tree of empty files in each layout (bad trees included). Nothing is decoded here; the
end-to-end runs on rendered trees are in tests/test_layouts_e2e.py."""
import pytest

from data_prep import datasets, msu, oulu, replay
from data_prep.index import DatasetError
from eval import scores


@pytest.mark.parametrize("name", ["replay", "msu", "oulu"])
def test_names_round_trip_and_fit_the_shards(name):
    m = datasets.module(name)
    st = m.stems()
    assert len(st) == len(set(st))
    for split in datasets.splits(name):
        ids = m.CLIENTS[split] or (3,)
        for s in st:
            rel = m.file_name(split, ids[0], s)
            assert m.parse(rel) == (split, ids[0], s), rel
            info = m.stem_info(s)
            assert max(len(s), len(info.attack), len(info.quality)) <= 8
    assert m.parse(f"{m.file_name('train', (m.CLIENTS['train'] or (1,))[0], st[0])}.bak") is None


def test_published_counts():
    # Replay-Attack: per client 4 real, 20 attacks; protocol sizes / 50 clients (bob.db.replay)
    per = {p: sum(replay.in_protocol(p, "train", s) and replay.stem_info(s).label == 0
                  for s in replay.stems()) for p in replay.PROTOCOLS}
    assert {p: 50 * n for p, n in per.items()} == {"grandtest": 1000, "print": 200, "mobile": 400,
                                                   "highdef": 400, "photo": 600, "video": 400,
                                                   "digitalphoto": 400}
    assert sum(replay.stem_info(s).label for s in replay.stems()) == 4
    assert len(replay.CLIENT_IDS) == 50 and len(replay.CLIENTS["train"]) == 15
    # MSU-MFSD: 35 clients, 70 real and 210 attack videos
    assert len(msu.CLIENTS["train"]) == 15 and len(msu.CLIENTS["test"]) == 20
    assert not set(msu.CLIENTS["train"]) & set(msu.CLIENTS["test"])
    assert 35 * sum(msu.stem_info(s).label for s in msu.stems()) == 70
    assert 35 * sum(1 - msu.stem_info(s).label for s in msu.stems()) == 210
    # OULU-NPU: the sizes of bob.db.oulunpu's lists (real, attack) per split
    want = {"Protocol_1": {"train": (240, 960), "dev": (180, 720), "test": (120, 480)},
            "Protocol_2": {"train": (360, 720), "dev": (270, 540), "test": (360, 720)},
            "Protocol_3_1": {"train": (300, 1200), "dev": (225, 900), "test": (60, 240)},
            "Protocol_4_1": {"train": (200, 400), "dev": (150, 300), "test": (20, 40)}}
    for p, splits in want.items():
        for split, (nr, na) in splits.items():
            vids = [s for s in oulu.stems() if oulu.in_protocol(p, split, s)]
            n = len(oulu.CLIENTS[split])
            real = sum(oulu.stem_info(s).label for s in vids)
            assert (n * real, n * (len(vids) - real)) == (nr, na), (p, split)
    assert len(oulu.PROTOCOLS) == 14


def _touch_tree(root, name, clients, skip=()):
    m = datasets.module(name)
    for split, ids in clients.items():
        for c in ids:
            for s in m.stems():
                rel = m.file_name(split, c, s)
                if rel in skip:
                    continue
                p = root / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"")


def test_replay_index_protocol_warnings_and_extras(tmp_path):
    _touch_tree(tmp_path, "replay", {"train": [1], "dev": [3], "test": [9]},
                skip={replay.file_name("dev", 3, "fprc")})
    (tmp_path / "train" / "real" / "notes.txt").write_text("x")
    idx = datasets.scan("replay", tmp_path, "print")
    assert {v.split for v in idx.videos} == {"train", "dev", "test"}
    # print protocol: 4 real + 4 print attacks per client, one dev print missing
    assert len(idx.videos) == 8 + 7 + 8
    assert all(v.attack in ("genuine", "print") and v.dataset == "replay" for v in idx.videos)
    assert any("dev client 3: 1 of 8" in w for w in idx.warnings)
    assert "train/real/notes.txt" in idx.extra
    assert len(datasets.scan("replay", tmp_path, "").videos) == 3 * 24 - 1   # grandtest
    with pytest.raises(ValueError, match="not a protocol of Replay-Attack"):
        datasets.scan("replay", tmp_path, "Protocol_1")


def test_bad_trees_are_refused_naming_what_is_wrong(tmp_path):
    with pytest.raises(DatasetError, match="devel"):
        _touch_tree(tmp_path / "a", "replay", {"train": [1], "test": [9]})
        datasets.scan("replay", tmp_path / "a")
    _touch_tree(tmp_path / "b", "oulu", {"train": [1], "dev": [21], "test": [36]})
    (tmp_path / "b" / "Test_files" / "1_1_01_1.avi").write_bytes(b"")   # user 1 in test too
    with pytest.raises(DatasetError, match="more than one split"):
        datasets.scan("oulu", tmp_path / "b")
    _touch_tree(tmp_path / "c", "msu", {"train": [2], "test": [1]})
    (tmp_path / "c" / "train_sub_list.txt").write_text("02\n04\n")
    (tmp_path / "c" / "scene01" / "real" / "real_client004_laptop_SD_scene01.mov").write_bytes(b"")
    idx = datasets.scan("msu", tmp_path / "c")
    assert len(idx.videos) == 16
    assert any("client 4 is in none of the published" in w for w in idx.warnings)
    assert any("train_sub_list.txt lists [2, 4]" in w for w in idx.warnings)
    with pytest.raises(DatasetError, match="no OULU-NPU video"):
        (tmp_path / "d" / "Train_files").mkdir(parents=True)
        (tmp_path / "d" / "Dev_files").mkdir()
        (tmp_path / "d" / "Test_files").mkdir()
        datasets.scan("oulu", tmp_path / "d")


def test_empty_split_is_named(tmp_path):
    _touch_tree(tmp_path, "oulu", {"train": [1], "dev": [21], "test": [36]})
    idx = datasets.scan("oulu", tmp_path, "Protocol_1")
    usable = [v for v in idx.videos if v.split != "dev"]
    with pytest.raises(DatasetError, match="split 'dev' \\(Dev_files/\\) has no usable video"):
        datasets.check_splits("oulu", usable)
    no_attack = [v for v in idx.videos if v.split != "test" or v.label == 1]
    with pytest.raises(DatasetError, match="split 'test' .* no usable attack video"):
        datasets.check_splits("oulu", no_attack)


def test_score_files_keep_each_data_sets_client_ids(tmp_path):
    rows = [scores.make_row(9, "ra1", 0, 0.9, "replay"), scores.make_row(9, "fhva", 0, 0.2, "replay"),
            scores.make_row(9, "1", 0, 0.8), scores.make_row(9, "HR_4", 0, 0.1)]
    p = scores.write_scores(tmp_path / "pooled.csv", rows, split="test")
    back = scores.read_scores(p)
    assert back == rows
    arr = scores.as_arrays(back)
    assert sorted(set(arr["client"])) == ["casia/9", "replay/9"]
    import csv
    ids = [(r["dataset"], r["claimed_id"], r["test_label"]) for r in csv.DictReader(open(p))]
    assert ids[0] == ("replay", "9", "replay/test/9/ra1/0")
    assert ids[2] == ("casia", "29", "test_release/9/1/0")          # bob.db.casia_fasd: + 20
    dev = scores.write_scores(tmp_path / "dev.csv", rows[:2], split="validation")
    assert {r["split"] for r in csv.DictReader(open(dev))} == {"dev"}
    text = p.read_text().replace(",test,", ",holdout,")
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ValueError, match="bad.csv:2: unknown split 'holdout'"):
        scores.read_scores(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="unknown Replay-Attack stem"):
        scores.make_row(1, "HR_1", 0, 0.5, "replay")
