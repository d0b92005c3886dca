"""posebook.data.download and data_scripts/download_*.py, against a local HTTP server on 127.0.0.1.

No test reaches the network: an autouse guard fails any connection or name lookup that is not 127.0.0.1, and the
server below can be told to truncate a transfer, to ignore Range requests or to serve wrong bytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from posebook.data import cocofile
from posebook.data import download as dl

ROOT = Path(__file__).resolve().parents[1]
LOCAL = "127.0.0.1"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


# ------------------------------------------------------------------------------------------------ local server

class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files`` with Range support; ``server.faults[path]`` makes one path misbehave."""

    def do_GET(self):
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            return self.send_error(404)
        fault = server.faults.get(self.path)
        if fault == "wrong-bytes":
            body = bytes(b ^ 0xFF for b in body)  # same length, other bytes: only the hash can tell
        start = 0 if fault == "ignore-range" else _range_start(self.headers.get("Range"))
        if start and start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        payload = body[start:]
        if fault == "truncate-once":  # promise every byte, send half, hang up
            del server.faults[self.path]
            payload = payload[: len(payload) // 2]
        self.wfile.write(payload)

    def log_message(self, *args):  # keep pytest's output clean
        pass


def _range_start(header: str | None) -> int:
    return int(header.removeprefix("bytes=").partition("-")[0]) if header else 0


class LocalServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer((LOCAL, 0), _Handler)
        self.httpd.files, self.httpd.faults, self.httpd.log = {}, {}, []
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "") -> str:
        return f"http://{LOCAL}:{self.httpd.server_port}{path}"

    def add(self, path: str, body: bytes) -> str:
        self.httpd.files[path] = body
        return self.url(path)

    @property
    def faults(self) -> dict:
        return self.httpd.faults

    def requests(self, path: str) -> list:
        return [rng for p, rng in self.httpd.log if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = LocalServer()
    yield srv
    srv.close()


# One guard for this process (monkeypatched per test) and for the scripts' subprocesses (as their sitecustomize).
GUARD_SOURCE = f'''
import socket
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo


def connect(sock, address):
    assert address[0] == "{LOCAL}", f"a test tried to reach {{address}}: tests only talk to {LOCAL}"
    return _connect(sock, address)


def getaddrinfo(host, *args, **kwargs):
    assert host == "{LOCAL}", f"a test tried to look up {{host!r}}: tests only talk to {LOCAL}"
    return _getaddrinfo(host, *args, **kwargs)
'''


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch):
    """Fail any connection or name lookup that is not 127.0.0.1, and keep proxies out of the way."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    guard: dict = {}
    exec(GUARD_SOURCE, guard)
    monkeypatch.setattr(socket.socket, "connect", guard["connect"])
    monkeypatch.setattr(socket, "getaddrinfo", guard["getaddrinfo"])


@pytest.fixture(scope="session")
def guarded_site(tmp_path_factory) -> Path:
    """A folder whose sitecustomize.py installs the guard in every Python started with it on PYTHONPATH."""
    folder = tmp_path_factory.mktemp("guarded_site")
    install = "\nsocket.socket.connect, socket.getaddrinfo = connect, getaddrinfo\n"
    (folder / "sitecustomize.py").write_text(GUARD_SOURCE + install)
    return folder


def _bytes(n: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"{seed}".encode()).digest(n)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url, dest, sha256=None, **kwargs):
    return dl.download(url, dest, sha256, progress=False, timeout=5, **kwargs)


# ---------------------------------------------------------------------------------------------------- download

def test_the_network_guard_refuses_any_host_but_127_0_0_1(tmp_path):
    with pytest.raises(AssertionError, match="tests only talk to 127.0.0.1"):
        _download("http://192.0.2.1/file.bin", tmp_path / "file.bin", retries=0)


def test_download_streams_the_file_checks_its_sha256_and_leaves_no_part_file(server, tmp_path):
    data = _bytes(300_000)
    dest = _download(server.add("/f.bin", data), tmp_path / "sub" / "f.bin", _sha(data), chunk_size=4096)
    assert dest.read_bytes() == data
    assert not (tmp_path / "sub" / "f.bin.part").exists()


def test_the_progress_bar_counts_the_bytes_on_stderr_and_can_be_turned_off(server, tmp_path, capsys):
    url = server.add("/bar.bin", _bytes(3 * 1024))
    dl.download(url, tmp_path / "bar.bin", timeout=5, chunk_size=1024)
    assert "bar.bin: 100%" in capsys.readouterr().err
    dl.download(url, tmp_path / "again.bin", timeout=5, progress=False)
    assert capsys.readouterr().err == ""


def test_a_complete_file_with_the_right_hash_is_not_downloaded_again(server, tmp_path):
    data = _bytes(1000)
    url = server.add("/f.bin", data)
    _download(url, tmp_path / "f.bin", _sha(data))
    _download(url, tmp_path / "f.bin", _sha(data))
    _download(url, tmp_path / "f.bin")
    assert len(server.requests("/f.bin")) == 1


def test_a_truncated_transfer_keeps_the_part_file_and_a_rerun_resumes_it_with_range(server, tmp_path):
    data = _bytes(100_000)
    url = server.add("/f.bin", data)
    server.faults["/f.bin"] = "truncate-once"
    with pytest.raises(dl.IncompleteDownloadError, match=r"got 50000 of 100000 bytes.*run again to resume"):
        _download(url, tmp_path / "f.bin", _sha(data), retries=0)
    assert (tmp_path / "f.bin.part").stat().st_size == 50_000
    assert not (tmp_path / "f.bin").exists()

    _download(url, tmp_path / "f.bin", _sha(data), retries=0)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert server.requests("/f.bin") == [None, "bytes=50000-"]


def test_retries_resume_a_truncated_transfer_within_one_call(server, tmp_path):
    data = _bytes(10_000)
    server.faults["/f.bin"] = "truncate-once"
    _download(server.add("/f.bin", data), tmp_path / "f.bin", _sha(data), retries=1)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert server.requests("/f.bin") == [None, "bytes=5000-"]


def test_a_wrong_checksum_names_the_url_and_both_hashes_and_leaves_no_file(server, tmp_path):
    data = _bytes(5000)
    url = server.add("/f.bin", data)
    server.faults["/f.bin"] = "wrong-bytes"
    served = _sha(bytes(b ^ 0xFF for b in data))
    with pytest.raises(dl.ChecksumError) as err:
        _download(url, tmp_path / "f.bin", _sha(data))
    assert url in str(err.value) and _sha(data) in str(err.value) and served in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_server_ignoring_range_restarts_the_file_from_byte_zero(server, tmp_path):
    data = _bytes(8000)
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes of another attempt")
    server.faults["/f.bin"] = "ignore-range"
    _download(server.add("/f.bin", data), tmp_path / "f.bin", _sha(data))
    assert server.requests("/f.bin") == ["bytes=30-"]
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_part_file_longer_than_the_servers_file_is_discarded_and_restarted(server, tmp_path):
    data = _bytes(100)
    (tmp_path / "f.bin.part").write_bytes(_bytes(500, seed=1))
    _download(server.add("/f.bin", data), tmp_path / "f.bin", _sha(data), retries=1)
    assert server.requests("/f.bin") == ["bytes=500-", None]
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_missing_file_is_an_http_error_naming_the_url_without_retries(server, tmp_path):
    with pytest.raises(dl.DownloadError, match=r"/absent.bin: HTTP 404") as err:
        _download(server.url("/absent.bin"), tmp_path / "absent.bin", retries=3)
    assert not isinstance(err.value, dl.IncompleteDownloadError)
    assert len(server.requests("/absent.bin")) == 1


def test_a_size_that_contradicts_the_expected_size_is_refused(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="the server sends 10 bytes, expected 11"):
        _download(server.add("/f.bin", _bytes(10)), tmp_path / "f.bin", size=11)
    assert not (tmp_path / "f.bin").exists()


def test_an_existing_file_with_another_hash_is_reported_and_kept(server, tmp_path):
    (tmp_path / "f.bin").write_bytes(b"the user's own file")
    with pytest.raises(dl.ChecksumError, match="exists but its SHA-256 is .*delete it"):
        _download(server.add("/f.bin", _bytes(10)), tmp_path / "f.bin", _sha(_bytes(10)))
    assert (tmp_path / "f.bin").read_bytes() == b"the user's own file"
    assert server.requests("/f.bin") == []


def test_registry_records_no_invented_hashes_and_checksum_report_says_so(tmp_path):
    assert set(dl.KNOWN_FILES) == {"annotations_trainval2017.zip", "mpii_human_pose_v1.tar.gz",
                                   "mpii_human_pose_v1_u12_2.zip"}
    assert all(f.sha256 is None and f.url.startswith(("http://images.cocodataset.org/", dl.MPII_URL))
               for f in dl.KNOWN_FILES.values())
    path = tmp_path / "mpii_human_pose_v1_u12_2.zip"
    path.write_bytes(b"abc")
    assert dl.checksum_report(path).startswith(f"SHA-256 {_sha(b'abc')}  {path}  (no published hash")


# -------------------------------------------------------------------------------------------------- extraction

def _zip(path: Path, members: dict) -> Path:
    """members: name -> bytes, or ("symlink", target)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in members.items():
            info = zipfile.ZipInfo(name)
            if isinstance(body, tuple):
                info.external_attr = 0o120777 << 16
                body = body[1].encode()
            zf.writestr(info, body)
    return path


def _tar(path: Path, members: dict) -> Path:
    """members: name -> bytes, or ("symlink" | "hardlink", target)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(body, tuple):
                info.type = tarfile.SYMTYPE if body[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = body[1]
                tf.addfile(info)
            else:
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
    return path


def test_extract_unpacks_zip_and_tar_gz_with_folders_and_in_tree_links(tmp_path):
    members = {"top/a.txt": b"a", "top/deep/b.txt": b"b"}
    made = dl.extract(_zip(tmp_path / "x.zip", members), tmp_path / "from_zip")
    assert made == [tmp_path / "from_zip" / "top"]
    assert (tmp_path / "from_zip/top/deep/b.txt").read_bytes() == b"b"

    tar_members = {**members, "top/link.txt": ("symlink", "deep/b.txt"), "top/hard.txt": ("hardlink", "top/a.txt")}
    dl.extract(_tar(tmp_path / "x.tar.gz", tar_members), tmp_path / "from_tar")
    assert (tmp_path / "from_tar/top/link.txt").read_bytes() == b"b"
    assert (tmp_path / "from_tar/top/hard.txt").read_bytes() == b"a"
    assert sorted(p.name for p in (tmp_path / "from_tar").iterdir()) == ["top"]  # no staging folder left


MALICIOUS = {
    "zip_dotdot": (_zip, {"ok.txt": b"ok", "../evil": b"x"}, "../evil"),
    "zip_absolute": (_zip, {"/abs/evil": b"x"}, "/abs/evil"),
    "zip_symlink_out": (_zip, {"link": ("symlink", "../../outside")}, "link"),
    "tar_dotdot": (_tar, {"ok.txt": b"ok", "a/../../evil": b"x"}, "a/../../evil"),
    "tar_absolute": (_tar, {"/abs/evil": b"x"}, "/abs/evil"),
    "tar_symlink_absolute": (_tar, {"etc": ("symlink", "/etc")}, "etc"),
    "tar_symlink_out": (_tar, {"up": ("symlink", "../outside")}, "up"),
    "tar_hardlink_out": (_tar, {"hard": ("hardlink", "../outside")}, "hard"),
    # each link alone stays inside; together `w` is dest/..: only following the links on disk sees it
    "tar_symlink_chain": (_tar, {"z": ("symlink", "."), "w": ("symlink", "z/..")}, "w"),
}


@pytest.mark.parametrize("case", MALICIOUS)
def test_extract_refuses_members_escaping_the_destination_and_leaves_nothing(case, tmp_path):
    make, members, culprit = MALICIOUS[case]
    archive = make(tmp_path / ("bad.zip" if make is _zip else "bad.tar.gz"), members)
    dest = tmp_path / "work" / "dest"
    with pytest.raises(dl.UnsafeArchiveError, match=f"member {culprit!r}"):
        dl.extract(archive, dest)
    assert list(dest.iterdir()) == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted([archive.name, "work", "dest"])


def test_extract_refuses_to_overwrite_what_the_destination_already_holds(tmp_path):
    archive = _zip(tmp_path / "x.zip", {"top/a.txt": b"new"})
    (tmp_path / "dest" / "top").mkdir(parents=True)
    with pytest.raises(FileExistsError, match=r"\['top'\] already exist"):
        dl.extract(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == [tmp_path / "dest" / "top"]


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_a_truncated_archive_is_reported_by_name_and_leaves_nothing(suffix, tmp_path):
    make = _zip if suffix == ".zip" else _tar
    whole = make(tmp_path / f"whole{suffix}", {f"top/{i}.bin": _bytes(20_000, seed=i) for i in range(3)})
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(ValueError, match=f"cut{suffix}: corrupt or truncated archive"):
        dl.extract(cut, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_extract_names_an_unknown_archive_type(tmp_path):
    with pytest.raises(ValueError, match="x.rar is neither"):
        dl.extract(tmp_path / "x.rar", tmp_path / "dest")


# --------------------------------------------------------------------------------------------------------- COCO

@pytest.fixture
def coco_json(coco_sample) -> dict:
    return json.loads((coco_sample / "person_keypoints_sample.json").read_text())


def test_coco_subset_is_seeded_and_keeps_every_annotation_of_the_chosen_images(coco_json):
    subset = cocofile.coco_subset(coco_json, num_images=2, seed=3)
    assert subset == cocofile.coco_subset(coco_json, num_images=2, seed=3)
    ids = {img["id"] for img in subset["images"]}
    assert len(ids) == 2 and [img["id"] for img in subset["images"]] == sorted(ids)
    assert subset["annotations"] == [a for a in coco_json["annotations"] if a["image_id"] in ids]
    assert subset["categories"] == coco_json["categories"]
    picks = {tuple(img["id"] for img in cocofile.coco_subset(coco_json, 2, seed)["images"]) for seed in range(20)}
    assert len(picks) > 1


def test_coco_subset_keeps_only_images_with_enough_keypoints(coco_json):
    most = max(a["num_keypoints"] for a in coco_json["annotations"])
    rich = {a["image_id"] for a in coco_json["annotations"] if a["num_keypoints"] >= most and not a["iscrowd"]}
    subset = cocofile.coco_subset(coco_json, num_images=len(rich), min_keypoints=most)
    assert {img["id"] for img in subset["images"]} == rich
    with pytest.raises(ValueError, match=f"num_images={len(rich) + 1}, but only {len(rich)} images"):
        cocofile.coco_subset(coco_json, num_images=len(rich) + 1, min_keypoints=most)


def test_coco_subset_never_chooses_an_image_whose_only_people_are_crowd_regions(coco_json):
    crowded = coco_json["annotations"][0]["image_id"]
    for ann in coco_json["annotations"]:
        ann["iscrowd"] = int(ann["image_id"] == crowded)
    eligible = {a["image_id"] for a in coco_json["annotations"] if not a["iscrowd"]}
    subset = cocofile.coco_subset(coco_json, num_images=len(eligible), min_keypoints=0)
    assert {img["id"] for img in subset["images"]} == eligible and crowded not in eligible


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.pop("annotations"), r"not a COCO annotations file; missing top-level keys \['annotations'\]"),
    (lambda d: d["annotations"][0].pop("keypoints"), r"annotation id 442619 has no \['keypoints'\]"),
    (lambda d: d["annotations"][0].update(image_id=-1), "annotation id 442619 refers to image_id -1"),
    (lambda d: d["annotations"][0]["keypoints"].pop(), "annotation id 442619: keypoints has 50 numbers"),
    (lambda d: d["images"][0].update(file_name="../../evil.jpg"),
     "image id 785: file_name '../../evil.jpg' must be a plain"),
], ids=["no_annotations", "no_keypoints", "unknown_image", "keypoints_not_triples", "file_name_escapes"])
def test_read_coco_names_the_file_and_the_record_that_is_wrong(coco_json, tmp_path, breakage, message):
    breakage(coco_json)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(coco_json))
    with pytest.raises(ValueError, match=f"broken.json: {message}"):
        cocofile.read_coco(path, require=("keypoints", "num_keypoints"), plain_file_names=True)


def test_download_coco_subset_checks_the_annotations_before_fetching_anything(coco_json, tmp_path):
    coco_json["images"][0]["file_name"] = "../../evil.jpg"
    path = tmp_path / "person_keypoints_val2017.json"
    path.write_text(json.dumps(coco_json))
    with pytest.raises(ValueError, match="file_name '../../evil.jpg' must be a plain file name"):
        dl.download_coco_subset(tmp_path / "out", annotations=path, num_images=1, base_url="http://192.0.2.1",
                                progress=False)
    assert not (tmp_path / "out").exists()


def test_images_with_people_counts_labelled_keypoints_when_num_keypoints_is_absent(coco_json):
    for ann in coco_json["annotations"]:
        del ann["num_keypoints"]
    counted = {a["image_id"] for a in coco_json["annotations"] if max(a["keypoints"][2::3]) > 0}
    assert cocofile.images_with_people(coco_json) == sorted(counted)


def _serve_coco(server: LocalServer, coco_sample: Path) -> dict:
    """The sample as COCO's server lays it out: the annotations zip and /val2017/<file_name>; returns the json."""
    data = json.loads((coco_sample / "person_keypoints_sample.json").read_text())
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as zf:
        zf.writestr("annotations/person_keypoints_val2017.json", json.dumps(data))
    server.add("/annotations/annotations_trainval2017.zip", blob.getvalue())
    for img in data["images"]:
        server.add(f"/val2017/{img['file_name']}", (coco_sample / "images" / img["file_name"]).read_bytes())
    return data


def _check_subset_on_disk(out: Path, coco_sample: Path, num_images: int) -> dict:
    from pycocotools.coco import COCO

    path = out / "annotations" / "person_keypoints_val2017_subset.json"
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints
        coco = COCO(str(path))
    assert len(coco.getImgIds()) == num_images
    for img in coco.loadImgs(coco.getImgIds()):
        assert (out / "val2017" / img["file_name"]).read_bytes() == \
            (coco_sample / "images" / img["file_name"]).read_bytes()
    assert sorted(p.name for p in (out / "val2017").iterdir()) == sorted(i["file_name"] for i in coco.dataset["images"])
    return coco.dataset


def test_download_coco_subset_end_to_end_against_the_local_server(server, coco_sample, tmp_path):
    data = _serve_coco(server, coco_sample)
    for img in data["images"]:  # every image breaks once; the retries resume them
        server.faults[f"/val2017/{img['file_name']}"] = "truncate-once"
    out = tmp_path / "coco"
    path = dl.download_coco_subset(out, "val2017", num_images=3, seed=1, base_url=server.url(), workers=2,
                                   progress=False, timeout=5)
    subset = _check_subset_on_disk(out, coco_sample, 3)
    assert subset == cocofile.coco_subset(data, 3, seed=1)
    assert (out / "annotations" / "person_keypoints_val2017.json").exists()
    assert path == out / "annotations" / "person_keypoints_val2017_subset.json"

    expected = {}
    for img in data["images"]:  # chosen images: broken once, then resumed from the middle; the others untouched
        size = (coco_sample / "images" / img["file_name"]).stat().st_size
        chosen = img["id"] in {i["id"] for i in subset["images"]}
        expected[img["file_name"]] = [None, f"bytes={size // 2}-"] if chosen else []
    dl.download_coco_subset(out, "val2017", num_images=3, seed=1, base_url=server.url(), progress=False)
    assert {name: server.requests(f"/val2017/{name}") for name in expected} == expected  # nothing fetched twice
    assert len(server.requests("/annotations/annotations_trainval2017.zip")) == 1  # the extracted json is reused


def test_download_coco_subset_uses_a_given_annotations_file_and_the_environment_base_url(
        server, coco_sample, tmp_path, monkeypatch):
    _serve_coco(server, coco_sample)
    monkeypatch.setenv(dl.COCO_URL_ENV, server.url())
    out = tmp_path / "coco"
    dl.download_coco_subset(out, num_images=2, annotations=coco_sample / "person_keypoints_sample.json",
                            progress=False)
    _check_subset_on_disk(out, coco_sample, 2)
    assert server.requests("/annotations/annotations_trainval2017.zip") == []


def test_download_coco_subset_lists_the_images_that_failed_and_writes_no_annotations(server, coco_sample, tmp_path):
    data = _serve_coco(server, coco_sample)
    missing = data["images"][0]
    del server.httpd.files[f"/val2017/{missing['file_name']}"]
    with pytest.raises(dl.DownloadError, match=f"(?s)1 of 4 images failed.*image id {missing['id']}: .*HTTP 404"):
        dl.download_coco_subset(tmp_path, num_images=4, base_url=server.url(), progress=False)
    assert not (tmp_path / "annotations" / "person_keypoints_val2017_subset.json").exists()


# --------------------------------------------------------------------------------------------------------- MPII

def _serve_mpii(server: LocalServer, tmp_path: Path) -> str:
    """Tiny stand-ins for the two MPII archives, laid out as on the MPII server under /mirror."""
    annotations = _zip(tmp_path / "a.zip", {"mpii_human_pose_v1_u12_1/mpii_human_pose_v1_u12_1.mat": b"MATLAB"})
    images = _tar(tmp_path / "i.tar.gz", {"images/000001163.jpg": b"jpeg 1", "images/000003072.jpg": b"jpeg 2"})
    server.add("/mirror/mpii_human_pose_v1_u12_2.zip", annotations.read_bytes())
    server.add("/mirror/mpii_human_pose_v1.tar.gz", images.read_bytes())
    return server.url("/mirror")


def test_download_mpii_fetches_and_unpacks_the_chosen_archives_once(server, tmp_path):
    base = _serve_mpii(server, tmp_path)
    out = tmp_path / "mpii"
    archives = dl.download_mpii(out, images=True, annotations=True, base_url=base, progress=False)
    assert sorted(archives) == ["mpii_human_pose_v1.tar.gz", "mpii_human_pose_v1_u12_2.zip"]
    assert (out / "images" / "000003072.jpg").read_bytes() == b"jpeg 2"
    assert (out / "mpii_human_pose_v1_u12_1" / "mpii_human_pose_v1_u12_1.mat").read_bytes() == b"MATLAB"
    dl.download_mpii(out, images=True, annotations=True, base_url=base, progress=False)  # no clash: stamped
    assert len(server.requests("/mirror/mpii_human_pose_v1.tar.gz")) == 1


# ------------------------------------------------------------------------------------------------------ scripts

@pytest.fixture
def script(guarded_site):
    """Run a data script in a fresh Python, without proxies, with the network guard installed."""
    def run(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(guarded_site), clean.get("PYTHONPATH")]))
        return subprocess.run([sys.executable, str(ROOT / "data_scripts" / name), *args], capture_output=True,
                              text=True, timeout=60, env={**clean, **(env or {})})
    return run


def test_the_scripts_run_under_the_network_guard(script, tmp_path):
    result = script("download_coco.py", "--out", str(tmp_path), "--num-images", "1", "--base-url", "http://192.0.2.1")
    assert result.returncode != 0 and "tests only talk to 127.0.0.1" in result.stderr


@pytest.mark.parametrize("name, options", [("download_coco.py", ["--num-images", "--annotations", "--base-url"]),
                                           ("download_mpii.py", ["--images", "--annotations", "--base-url"])])
def test_scripts_explain_their_options(script, name, options):
    result = script(name, "--help")
    assert result.returncode == 0, result.stderr
    assert all(option in result.stdout for option in options)


def test_download_coco_script_end_to_end_against_the_local_server(script, server, coco_sample, tmp_path):
    _serve_coco(server, coco_sample)
    out = tmp_path / "coco"
    result = script("download_coco.py", "--out", str(out), "--num-images", "2", "--seed", "5", "--no-progress",
                     env={dl.COCO_URL_ENV: server.url()})
    assert result.returncode == 0, result.stderr
    _check_subset_on_disk(out, coco_sample, 2)
    zip_sha = _sha(server.httpd.files["/annotations/annotations_trainval2017.zip"])
    assert f"SHA-256 {zip_sha}" in result.stdout and "2 images" in result.stdout
    assert server.requests("/annotations/annotations_trainval2017.zip") == [None]


def test_download_mpii_script_end_to_end_and_its_errors(script, server, tmp_path):
    base = _serve_mpii(server, tmp_path)
    result = script("download_mpii.py", "--out", str(tmp_path / "mpii"), "--annotations", "--base-url", base,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"SHA-256 {_sha(server.httpd.files['/mirror/mpii_human_pose_v1_u12_2.zip'])}" in result.stdout
    assert (tmp_path / "mpii" / "mpii_human_pose_v1_u12_1" / "mpii_human_pose_v1_u12_1.mat").exists()
    assert server.requests("/mirror/mpii_human_pose_v1.tar.gz") == []

    failed = script("download_mpii.py", "--out", str(tmp_path / "m2"), "--annotations", "--base-url",
                     server.url("/nowhere"), "--retries", "0")
    assert failed.returncode == 1 and "HTTP 404" in failed.stderr


# ------------------------------------------------------------------------- published checkpoints (chapter 09)

def _mmpose_bytes(model) -> bytes:
    """``model``'s weights in MMPose 0.x's layout: {"meta", "state_dict"}, the network under ``backbone.`` and
    HRNet's final 1x1 conv under ``keypoint_head.`` (as MMPose's HRNet checkpoints store them)."""
    import io

    import torch

    state = {(f"keypoint_head.{k}" if k.startswith("final_layer.") else f"backbone.{k}"): v
             for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"meta": {"epoch": 210}, "state_dict": state}, buffer)
    return buffer.getvalue()


@pytest.fixture
def tiny_published(monkeypatch):
    from posebook import weights

    entry = weights.Published(f"{weights.MMPOSE_URL}/top_down/hrnet/tiny_hrnet_coco.pth", "hrnet", dict(width=4),
                              mmpose_ap=None, paper_ap=None)
    monkeypatch.setitem(weights.PUBLISHED, "tiny_hrnet", entry)
    return entry


def test_a_published_checkpoint_is_fetched_from_the_mirror_converted_once_and_loaded(server, tmp_path,
                                                                                   tiny_published):
    import torch

    from posebook import models
    from posebook.weights import fetch_published

    torch.manual_seed(3)
    source = models.create("hrnet", width=4)
    served = server.add("/mirror/top_down/hrnet/tiny_hrnet_coco.pth", _mmpose_bytes(source))
    model = fetch_published("tiny_hrnet", tmp_path, base_url=server.url("/mirror"), progress=False)
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    assert (tmp_path / "tiny_hrnet.pt").exists() and (tmp_path / "tiny_hrnet_coco.pth").exists()
    assert not list(tmp_path.glob("*.part"))
    again = fetch_published("tiny_hrnet", tmp_path, base_url=server.url("/mirror"), progress=False)
    assert len(server.requests("/mirror/top_down/hrnet/tiny_hrnet_coco.pth")) == 1  # the second call reads the .pt
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), source.state_dict().values()))
    assert served.endswith("tiny_hrnet_coco.pth")


def test_a_published_checkpoint_of_other_keys_is_refused_and_nothing_converted_is_left(server, tmp_path,
                                                                                      tiny_published):
    from posebook import models
    from posebook.weights import CheckpointError, fetch_published

    server.add("/mirror/top_down/hrnet/tiny_hrnet_coco.pth", _mmpose_bytes(models.create("hrnet", width=8)))
    with pytest.raises(CheckpointError, match="tiny_hrnet_coco.pth does not fit"):
        fetch_published("tiny_hrnet", tmp_path, base_url=server.url("/mirror"), progress=False)
    assert not (tmp_path / "tiny_hrnet.pt").exists()


def test_the_published_registry_names_mmposes_files_and_an_unknown_name_is_refused(tmp_path):
    from posebook.weights import MMPOSE_URL, PUBLISHED, fetch_published

    for name, entry in PUBLISHED.items():
        assert entry.url.startswith(MMPOSE_URL + "/top_down/") and entry.url.endswith(".pth")
        assert entry.mmpose_ap and entry.paper_ap and name.endswith(f"{entry.input_size[0]}x{entry.input_size[1]}")
    with pytest.raises(KeyError, match="no published checkpoint named 'cpn_r50'"):
        fetch_published("cpn_r50", tmp_path)
