"""The commands issue 4 names, run with the real clients."""

from __future__ import annotations

import hashlib
import os

import httpx

from .conftest import swift_cli


def test_openstack_cli_container_and_objects(cloud, tmp_path):
    created = cloud.cli("container", "create", "docs")
    assert created[0]["container"] == "docs"
    src = tmp_path / "report.txt"
    src.write_bytes(b"quarterly numbers\n" * 1000)
    obj = cloud.cli("object", "create", "docs", str(src), "--name", "reports/q1.txt")
    assert obj[0]["object"] == "reports/q1.txt"
    assert obj[0]["etag"] == hashlib.md5(src.read_bytes()).hexdigest()
    listed = cloud.cli("object", "list", "docs")
    assert [o["Name"] for o in listed] == ["reports/q1.txt"]
    out = tmp_path / "saved.txt"
    proc = cloud.cli("object", "save", "docs", "reports/q1.txt", "--file", str(out),
                     parse=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == src.read_bytes()
    shown = cloud.cli("object", "show", "docs", "reports/q1.txt")
    assert shown["content-type"] == "text/plain"
    assert int(shown["content-length"]) == 18000
    cont = cloud.cli("container", "show", "docs")
    assert int(cont["object_count"]) == 1 and int(cont["bytes_used"]) == 18000
    catalog = cloud.cli("catalog", "show", "object-store")
    assert catalog["name"] == "swift"


def test_swift_upload_slo_download_public_and_tempurl(cloud, tmp_path, swift):
    data = os.urandom(3 * 1024 * 1024 + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    swift_cli(cloud, "upload", "--use-slo", "-S", "1048576", "bigc", "big.bin",
              cwd=str(tmp_path))
    # Four segments in bigc_segments, one manifest in bigc.
    segs = swift.get("bigc_segments", params={"format": "json"}).json()
    assert len(segs) == 4 and sum(s["bytes"] for s in segs) == len(data)
    head = swift.head("bigc/big.bin")
    assert head.headers["x-static-large-object"] == "True"
    assert int(head.headers["content-length"]) == len(data)

    out = tmp_path / "out"
    out.mkdir()
    swift_cli(cloud, "download", "bigc", "big.bin", "-o", str(out / "big.bin"))
    assert (out / "big.bin").read_bytes() == data

    # A range across a segment boundary is served from two segments.
    r = swift.get("bigc/big.bin", headers={"Range": "bytes=1048570-1048589"})
    assert r.status_code == 206 and r.content == data[1048570:1048590]

    # Anonymous reads are refused until the container is public.
    anon = httpx.get(swift.url("bigc/big.bin"))
    assert anon.status_code == 401
    swift_cli(cloud, "post", "-r", ".r:*", "bigc")
    assert swift.head("bigc").headers["x-container-read"] == ".r:*"
    anon = httpx.get(swift.url("bigc/big.bin"))
    assert anon.status_code == 200 and anon.content == data
    assert httpx.get(swift.url("bigc")).status_code == 401  # no .rlistings

    # TempURL on a private container.
    swift_cli(cloud, "upload", "private", "big.bin", "--object-name", "t.bin",
              "-H", "X-Object-Meta-Secret: s", "-H", "X-Object-Meta-Public-Tag: p",
              cwd=str(tmp_path))
    swift_cli(cloud, "post", "-m", "Temp-URL-Key:s3cret")
    path = f"/object-store/v1/{swift.account}/private/t.bin"
    proc = swift_cli(cloud, "tempurl", "GET", "600", path, "s3cret")
    signed = proc.stdout.strip()
    r = httpx.get(cloud.url + signed)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-disposition"].startswith('attachment; filename="t.bin"')
    assert "x-object-meta-secret" not in r.headers
    assert r.headers["x-object-meta-public-tag"] == "p"
    # Without the prefix (as Swift users sign), with sha512, and tampered.
    proc = swift_cli(cloud, "tempurl", "--digest", "sha512", "GET", "600",
                     f"/v1/{swift.account}/private/t.bin", "s3cret")
    r = httpx.get(f"{cloud.url}/object-store{proc.stdout.strip()}")
    assert r.status_code == 200
    assert httpx.get(cloud.url + signed.replace("t.bin", "x.bin")).status_code == 401
    assert httpx.put(cloud.url + signed, content=b"x").status_code == 401

    # swift delete removes the SLO with its segments (bulk delete underneath).
    swift_cli(cloud, "delete", "bigc", "big.bin")
    assert swift.get("bigc_segments", params={"format": "json"}).json() == []
    stat = swift_cli(cloud, "stat").stdout
    assert "Containers: 3" in stat


def test_openstacksdk_object_store(cloud):
    conn = cloud.connect()
    conn.object_store.create_container("sdk", metadata={"color": "blue"})
    cont = conn.object_store.get_container_metadata("sdk")
    assert cont.metadata == {"color": "blue"}
    conn.object_store.upload_object(container="sdk", name="a.json", data=b'{"a": 1}',
                                    metadata={"owner": "me"})
    obj = conn.object_store.get_object_metadata("a.json", container="sdk")
    assert obj.metadata["owner"] == "me" and obj.content_type == "application/json"
    assert conn.object_store.download_object("a.json", container="sdk") == b'{"a": 1}'
    conn.object_store.set_object_metadata("a.json", container="sdk", owner="you")
    obj = conn.object_store.get_object_metadata("a.json", container="sdk")
    assert obj.metadata["owner"] == "you"
    names = [o.name for o in conn.object_store.objects("sdk")]
    assert names == ["a.json"]
    assert [c.name for c in conn.object_store.containers()] == ["sdk"]
    info = conn.object_store.get_info()
    assert "slo" in info and "tempurl" in info
    conn.object_store.delete_object("a.json", container="sdk")
    conn.object_store.delete_container("sdk")
    assert list(conn.object_store.containers()) == []


def test_swift_dlo_upload_download_and_list(cloud, tmp_path, swift):
    data = os.urandom(2 * 1024 * 1024 + 7)
    (tmp_path / "dlo.bin").write_bytes(data)
    swift_cli(cloud, "upload", "--use-dlo", "-S", "1048576", "dloc", "dlo.bin",
              cwd=str(tmp_path))
    head = swift.head("dloc/dlo.bin")
    assert head.headers["x-object-manifest"].startswith("dloc_segments/dlo.bin/")
    assert int(head.headers["content-length"]) == len(data)
    swift_cli(cloud, "download", "dloc", "dlo.bin", "-o", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    listed = swift_cli(cloud, "list", "dloc").stdout.split()
    assert listed == ["dlo.bin"]
    # Server-side copy of a large object makes a plain object of its bytes.
    r = swift.copy("dloc/dlo.bin", headers={"Destination": "dloc/flat.bin"})
    assert r.status_code == 201
    flat = swift.get("dloc/flat.bin")
    assert flat.content == data and "x-object-manifest" not in flat.headers
    assert flat.headers["etag"] == hashlib.md5(data).hexdigest()
    swift_cli(cloud, "delete", "dloc", "dlo.bin")
    assert swift.get("dloc_segments").status_code == 204
