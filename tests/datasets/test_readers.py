"""Label readers: every bad-label case is counted or a clear error naming the file, never silent."""
import json

import cv2
import numpy as np
import pytest

from edge_app.datasets import DatasetError, load_mask, open_dataset, read_coco, read_masks, read_voc


def _voc(root, name, objects, size=(100, 80), image=True):
    (root / "images").mkdir(exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    if image:
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), np.zeros((size[1], size[0], 3), np.uint8))
    objs = "".join(f"<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox><xmin>{b[0]}</xmin>"
                   f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                   for n, b, d in objects)
    (root / "annotations" / f"{name}.xml").write_text(
        f"<annotation><filename>{name}.jpg</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"</size>{objs}</annotation>")


def test_voc_bad_labels_are_counted(tmp_path):
    _voc(tmp_path, "ok", [("cat", (10, 10, 50, 50), False), ("dog", (0, 0, 20, 20), True)])
    _voc(tmp_path, "outside", [("cat", (-5, 10, 150, 90), False)])
    _voc(tmp_path, "zero", [("cat", (30, 30, 30, 60), False), ("cat", (1, 1, 9, 9), False)])
    _voc(tmp_path, "noimage", [("cat", (1, 1, 9, 9), False)], image=False)
    (tmp_path / "annotations" / "broken.xml").write_text("<annotation><object>")
    ds = read_voc(tmp_path)
    assert ds.classes == ("cat", "dog")
    assert len(ds) == 3
    c = ds.issues.counts
    assert c["box outside the image (clipped)"] == 1
    assert c["zero-area box (dropped)"] == 1
    assert c["image missing for annotation (skipped)"] == 1
    assert c["unreadable annotation (image skipped)"] == 1
    summary = ds.issues.summary()
    assert "broken.xml" in summary and "noimage.xml" in summary
    by_name = {s.image_path.stem: s for s in ds.samples}
    np.testing.assert_array_equal(by_name["outside"].truth.boxes, [[0, 10, 100, 80]])
    assert len(by_name["zero"].truth) == 1
    assert by_name["ok"].truth.ignore.tolist() == [False, True]  # difficult -> ignored by the matcher


def test_voc_split_csv_and_unknown_class(tmp_path):
    _voc(tmp_path, "a", [("cat", (1, 1, 9, 9), False)])
    _voc(tmp_path, "b", [("cow", (1, 1, 9, 9), False)])
    split = tmp_path / "split.csv"
    split.write_text("filename,width\nb.jpg,100\n")
    ds = read_voc(tmp_path, split=split, classes=("cat",))
    assert [s.image_path.stem for s in ds.samples] == ["b"]
    assert ds.issues.counts["unknown class 'cow' (object dropped)"] == 1
    with pytest.raises(DatasetError, match="filename"):
        bad = tmp_path / "bad.csv"
        bad.write_text("name\nx\n")
        read_voc(tmp_path, split=bad)


def test_raccoon_split_matches_the_csv(shared_data):
    train = open_dataset(shared_data / "raccoon", shared_data / "raccoon" / "splits" / "train_labels.csv")
    test = open_dataset(shared_data / "raccoon", shared_data / "raccoon" / "splits" / "test_labels.csv")
    assert (len(train), len(test)) == (160, 40)
    assert not {s.image_path for s in train.samples} & {s.image_path for s in test.samples}


def _coco(tmp_path, anns, cats=({"id": 3, "name": "cat"},), images=None):
    images = images or [{"id": 7, "file_name": "x.jpg", "width": 100, "height": 80}]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": list(cats)}))
    return path


def test_coco_reader_and_bad_entries(tmp_path):
    path = _coco(tmp_path, [
        {"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 10, 20, 20], "area": 300, "iscrowd": 1},
        {"id": 2, "image_id": 7, "category_id": 3, "bbox": [90, 70, 20, 20]},
        {"id": 3, "image_id": 7, "category_id": 3, "bbox": [10, 10, 0, 5]},
        {"id": 4, "image_id": 7, "category_id": 99, "bbox": [1, 1, 5, 5]},
        {"id": 5, "image_id": 7, "category_id": 3, "bbox": [1, "x", 5, 5]},
    ])
    ds = read_coco(path)
    s = ds.samples[0]
    assert ds.classes == ("cat",) and ds.category_ids == (3,)
    assert s.truth.crowd.tolist() == [True, False] and s.truth.area[0] == 300
    np.testing.assert_array_equal(s.truth.boxes[1], [90, 70, 100, 80])
    c = ds.issues.counts
    assert c["zero-area box (dropped)"] == 1 and c["unknown category (dropped)"] == 1
    assert c["malformed bbox (dropped)"] == 1 and c["box outside the image (clipped)"] == 1


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"images": []}', "missing annotations, categories"),
    ('{"images": [], "annotations": [{"image_id": 1}], "categories": []}', "annotations\\[0\\]: missing"),
    ('{"images": [], "annotations": [], "categories": [{"id": 1}]}', "categories\\[0\\]: missing name"),
])
def test_coco_malformed_files_name_file_and_entry(tmp_path, content, message):
    path = tmp_path / "gt.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        read_coco(path)
    assert str(path) in str(info.value)


def test_masks_binary_255_and_size_mismatch(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "0.png"), np.zeros((20, 30), np.uint8))
    m = np.zeros((20, 30), np.uint8)
    m[5:10] = 255
    cv2.imwrite(str(tmp_path / "lab" / "0.png"), m)
    cv2.imwrite(str(tmp_path / "img" / "1.png"), np.zeros((20, 30), np.uint8))
    cv2.imwrite(str(tmp_path / "lab" / "1.png"), np.zeros((10, 30), np.uint8))
    cv2.imwrite(str(tmp_path / "img" / "2.png"), np.zeros((20, 30), np.uint8))  # no mask
    ds = read_masks(tmp_path / "img", tmp_path / "lab")
    assert len(ds) == 2 and ds.issues.counts["image without a mask (skipped)"] == 1
    mask = load_mask(ds.samples[0].mask_path, ds.samples[0].image_path, (20, 30))
    assert set(np.unique(mask).tolist()) == {0, 1}
    with pytest.raises(DatasetError, match=r"mask .*1.png is 30x10 but image .*1.png is 30x20"):
        load_mask(ds.samples[1].mask_path, ds.samples[1].image_path, (20, 30, 3))


def test_real_segmentation_sets(shared_data):
    isbi = open_dataset(shared_data / "isbi_membrane" / "train")
    camvid = open_dataset(shared_data / "camvid" / "train")
    assert len(isbi) == 30 and isbi.task == "segmentation"
    assert len(camvid) == 367 and camvid.ignore_index == 11 and camvid.classes[0] == "Sky"
    s = isbi.samples[0]
    assert set(np.unique(load_mask(s.mask_path)).tolist()) == {0, 1}


def test_unknown_layout_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="not a recognised dataset layout"):
        open_dataset(tmp_path)


def test_with_classes_matches_by_name_and_counts_what_it_drops(tmp_path):
    from edge_app.datasets.synthetic import write_dataset
    from edge_app.datasets import DatasetError, open_dataset
    root = write_dataset(tmp_path / "d", 6, seed=3, width=96, height=64)
    ds = open_dataset(root)
    names_before = [[ds.classes[c] for c in s.truth.classes] for s in ds.samples]
    other = ds.with_classes(("triangle", "square"))  # reordered, circle left out
    for before, s in zip(names_before, other.samples):
        assert [other.classes[c] for c in s.truth.classes] == [n for n in before if n != "circle"]
    dropped = sum(n.count("circle") for n in map(" ".join, names_before))
    assert dropped > 0 and sum(v for k, v in other.issues.counts.items() if "object dropped" in k) == dropped
    masks = open_dataset(root, task="segmentation")
    assert masks.with_classes(("bg", "a", "b", "c")).classes == ("bg", "a", "b", "c")  # positions named
    with pytest.raises(DatasetError, match="cannot name them"):
        masks.with_classes(("bg", "fg"))
