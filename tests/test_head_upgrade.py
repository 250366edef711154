"""A head retrained for one version of a model's backbone is not used on another version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge.heads import head_info
from edge.retrain import retrain
from edge.runtime.classifier import Head
from edge.runtime.loader import open_classifier
from edge.samples import SampleStore
from tests.conftest import HANDS
from tests.test_retrain import FINGERS, fill, fresh, rgb


def test_a_head_made_for_another_backbone_is_refused_and_the_shipped_one_counts(tmp_path: Path) -> None:
    # An upgrade (install.sh replacing the models) keeps the embedding size but changes what
    # the numbers mean: the old head must not silently run on the new backbone.
    cfg, pkg, path = fresh(tmp_path)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 3, FINGERS)
        assert retrain(cfg, pkg, store, "int8", force=True).swapped
    mine = Head.load(path)
    assert open_classifier(cfg).head is not None  # made for this backbone: used

    info = head_info(mine) | {"backbone_sha256": "0" * 64}  # as the previous version's would be
    mine.save(path, info_json=json.dumps(info))
    clf = open_classifier(cfg)
    assert clf.head is None and not clf.model_id.endswith("+head")
    assert clf.head_problem is not None and "trained on another backbone" in clf.head_problem
    assert "retrain" in clf.head_problem
    probs, _ = clf.classify(rgb(sorted((HANDS / "3").glob("*.JPG"))[0]))
    assert clf.labels[int(np.argmax(probs))] == "3"

    # a head that records no backbone (written before heads did) is still used
    mine.save(path, info_json=json.dumps({k: v for k, v in info.items() if k != "backbone_sha256"}))
    assert open_classifier(cfg).head is not None
