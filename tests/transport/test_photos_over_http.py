"""Photos over HTTP: sent once by content hash, fetched only by tablets whose grids hold them."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from support import street as st
from wangge.core.models import Attachment
from wangge.sync.attachments import BlobStore
from wangge.sync.transport.client import MasterClient
from wangge.sync.transport.fieldwork import tablet_session
from wangge.sync.device.tablet import tablet_photos


@pytest.fixture
def street(served_street):
    return served_street


def _attach(s, grid: str, blobs: BlobStore, data: bytes) -> str:
    sha = blobs.put(data)
    with s.write(actor="worker") as rec:
        rec.insert("attachment", {"sha256": sha, "size": len(data), "media_type": "image/jpeg", "grid_id": grid})
    return sha


def _sync(tablet, url, photos, said=None) -> str:
    """The photo line of a sync, without its byte counts (kept in ``said`` when given)."""
    with MasterClient(url) as client:
        line = tablet_session(tablet, client, photos=photos).split("; ")[-1]
    if said is not None:
        said.append(line)
    return re.sub(r" \([\d,]+ bytes up, [\d,]+ down\)", "", line)


def test_photos_go_up_once_and_come_down_only_within_scope(street, tmp_path):
    built, url = street
    master_blobs = BlobStore(tmp_path / "files" / "blobs")
    tablets = [st.tablet(built, url, n, encrypted=True) for n in range(2)]
    photos = [tablet_photos(t, tmp_path / f"tablet{n}.db") for n, t in enumerate(tablets)]
    for n, tablet in enumerate(tablets):
        _sync(tablet, url, photos[n])  # first contact
    taken = _attach(tablets[0], built.grids[0], photos[0], b"a broken telecom box" * 1000)
    said = []
    assert _sync(tablets[0], url, photos[0], said) == "photos: 1 sent, 0 received"
    assert master_blobs.read(taken) == photos[0].read(taken)
    up = int(re.search(r"\(([\d,]+) bytes up", said[0]).group(1).replace(",", ""))
    assert up >= len(master_blobs.read(taken))  # the summary counts the photo's bytes, not only the bundle's
    assert _sync(tablets[0], url, photos[0]) == "photos: 0 sent, 0 received"  # once, not every sync

    office = _attach(built.store, built.grids[0], master_blobs, b"the repair, photographed by the department")
    _attach(built.store, built.grids[1], master_blobs, b"a photo of the other grid")
    assert _sync(tablets[0], url, photos[0]) == "photos: 0 sent, 1 received"
    assert photos[0].read(office) == master_blobs.read(office)
    assert _sync(tablets[1], url, photos[1]) == "photos: 0 sent, 1 received"
    assert not photos[1].has(office) and not photos[1].has(taken)  # grid 0's photos stay off tablet 1
    for tablet in tablets:
        tablet.close()


def test_a_photo_its_author_has_not_sent_yet_waits_for_a_later_sync(street, tmp_path):
    built, url = street
    tablet = st.tablet(built, url, 0)
    photos = tablet_photos(tablet, tmp_path / "tablet0.db")
    _sync(tablet, url, photos)
    with built.store.write(actor="office") as rec:  # a row whose photo is still on another tablet
        rec.insert("attachment", {"sha256": "e" * 64, "size": 10, "media_type": "image/jpeg", "grid_id": built.grids[0]})
    assert _sync(tablet, url, photos) == "photos: 0 sent, 0 received, 1 not at the master yet"
    with tablet.read() as conn:
        assert conn.execute(select(Attachment.sha256)).scalars().all() == ["e" * 64]
    tablet.close()


def test_photos_of_a_grid_the_tablet_left_are_removed_from_it(street, tmp_path):
    built, url = street
    master_blobs = BlobStore(tmp_path / "files" / "blobs")
    tablet = st.tablet(built, url, 0, encrypted=True)
    photos = tablet_photos(tablet, tmp_path / "tablet0.db")
    _sync(tablet, url, photos)
    theirs = _attach(built.store, built.grids[0], master_blobs, b"a resident's door, photographed")
    mine = _attach(tablet, built.grids[0], photos, b"taken on this patrol, not sent yet")
    assert _sync(tablet, url, photos) == "photos: 1 sent, 1 received"
    with built.store.write(actor="office") as rec:  # the worker moves to the other grid
        (old,) = rec.conn.exec_driver_sql("SELECT id FROM assignment WHERE worker_id = ?", (built.workers[0],)).one()
        rec.update("assignment", old, {"active": False})
        rec.insert("assignment", {"worker_id": built.workers[0], "grid_id": built.grids[1]})
    said = _sync(tablet, url, photos)
    assert said == "photos: 0 sent, 0 received, 2 removed (no longer in this tablet's grids)"
    assert not photos.has(theirs) and not photos.has(mine)
    assert master_blobs.has(theirs) and master_blobs.has(mine)  # the master keeps every photo
    tablet.close()
