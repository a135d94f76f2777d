#!/usr/bin/env python3
"""Fetch the pinned GraphiQL assets from the npm registry into gateway/static/graphiql/.

GraphiQL's usual page loads React, GraphiQL and the explorer plugin from a public CDN, so on a
machine without internet it stays blank. The gateway serves its own copy instead: this script
downloads each pinned package with ``npm pack`` (the ordinary npm client, from whatever registry
npm is configured for), checks the tarball against the pinned integrity (sha512, as in a
package-lock), and copies just the browser builds it needs (UMD, production) with their
licences into ``gateway/static/graphiql/<package>-<version>/``. The result is committed: it is
package data of ``gateway``, served at ``/static/graphiql/...`` with a long cache lifetime
(the version is in the path).

It also writes ``gateway/static/graphiql/assets.json`` (package, version, integrity and the
sha256 of every copied file), which ``gateway/graphiql.py`` reads to build the page's URLs and
the tests use to check the committed files.

Usage: ``python scripts/fetch_graphiql_assets.py`` (needs Node's npm); ``--check`` verifies the
committed files against assets.json without any network.

To upgrade, change a version and its integrity below (``npm view NAME@VERSION dist.integrity``),
run the script, look at the page (``make run``) and the browser tests, and commit the result.
React stays on 18: React 19 ships no UMD build. GraphiQL stays on 4.x: 5.x ships only ES
modules (and Monaco, with web workers), which would need a bundler.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "gateway" / "static" / "graphiql"
MANIFEST = TARGET / "assets.json"


@dataclass(frozen=True)
class Package:
    key: str
    """Short name: the folder is ``<key>-<version>``."""
    name: str
    version: str
    integrity: str
    files: dict[str, str]
    """Path in the tarball (under ``package/``) -> name in the folder."""
    license_from: str | None = None
    """Another package's key whose LICENSE applies (for a package that ships none)."""
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return f"{self.key}-{self.version}"


PACKAGES = [
    Package(
        key="react",
        name="react",
        version="18.3.1",
        integrity="sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
        files={"umd/react.production.min.js": "react.production.min.js", "LICENSE": "LICENSE"},
    ),
    Package(
        key="react-dom",
        name="react-dom",
        version="18.3.1",
        integrity="sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
        files={
            "umd/react-dom.production.min.js": "react-dom.production.min.js",
            "LICENSE": "LICENSE",
        },
    ),
    Package(
        key="graphiql",
        name="graphiql",
        version="4.1.2",
        integrity="sha512-rNlzQIAzm6i2KBXmVQWBgLvt0TloxFVB2d18bukvdsvjEuFDHsKx5IVOomL1W1o5WW+tE54+ioHb2AEKzO2cUg==",
        files={
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "LICENSE",
        },
    ),
    Package(
        key="plugin-explorer",
        name="@graphiql/plugin-explorer",
        version="4.0.6",
        integrity="sha512-TppIi92YPER3v70nlF01KTQrq9AiYqkZicSd1hpU7aqGmbqw/pLwBNLUEcfENBoJtw574Qxjswb01+GaYK0Tzw==",
        files={"dist/index.umd.js": "index.umd.js", "dist/style.css": "style.css"},
        license_from="graphiql",
        notes=[
            "The package ships no licence file; its package.json says MIT and it lives in the "
            "graphql/graphiql repository, whose licence (copied from the graphiql package) "
            "follows.",
        ],
    ),
    Package(
        key="graphiql-explorer",
        name="graphiql-explorer",
        version="0.9.0",
        integrity="sha512-fZC/wsuatqiQDO2otchxriFO0LaWIo/ovF/CQJ1yOudmY0P7pzDiP+l9CEHUiWbizk3e99x6DQG4XG1VxA+d6A==",
        files={"LICENSE": "LICENSE"},
        notes=["Bundled inside @graphiql/plugin-explorer's index.umd.js; only its licence here."],
    ),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sri_sha512(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def npm_pack(package: Package, into: Path) -> Path:
    spec = f"{package.name}@{package.version}"
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is not on PATH: install Node.js (Debian: apt-get install nodejs npm)")
    result = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(result.stdout)[0]
    tarball = into / info["filename"]
    actual = sri_sha512(tarball)
    if actual != package.integrity or info.get("integrity") != package.integrity:
        sys.exit(f"{spec}: integrity {actual} is not the pinned {package.integrity}")
    return tarball


def extract(package: Package, tarball: Path, folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True)
    copied: dict[str, str] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for source, name in package.files.items():
            member = archive.getmember(f"package/{source}")
            if not member.isfile():
                sys.exit(f"{package.name}: {source} is not a regular file")
            handle = archive.extractfile(member)
            assert handle is not None
            (folder / name).write_bytes(handle.read())
    for name in sorted(p.name for p in folder.iterdir()):
        copied[name] = sha256(folder / name)
    return copied


def write_license(package: Package, folder: Path, staging: Path) -> None:
    """A package without a licence file gets the one that applies, with a note on top."""
    if package.license_from is None:
        return
    source = next(p for p in PACKAGES if p.key == package.license_from)
    text = (staging / source.folder / "LICENSE").read_text()
    header = "\n".join(package.notes)
    (folder / "LICENSE").write_text(f"{package.name}@{package.version}: {header}\n\n{text}")


def fetch() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        downloads = Path(tmp) / "tarballs"
        staging = Path(tmp) / "graphiql"
        downloads.mkdir()
        staging.mkdir()
        manifest: dict[str, object] = {}
        for package in PACKAGES:
            tarball = npm_pack(package, downloads)
            folder = staging / package.folder
            extract(package, tarball, folder)
            write_license(package, folder, staging)
            manifest[package.key] = {
                "name": package.name,
                "version": package.version,
                "integrity": package.integrity,
                "folder": package.folder,
                "files": {p.name: sha256(p) for p in sorted(folder.iterdir())},
            }
            print(f"{package.name}@{package.version} -> {package.folder}/", file=sys.stderr)
        TARGET.mkdir(parents=True, exist_ok=True)
        # Replace the versioned folders (and nothing else: the page's own script lives here).
        for old in TARGET.iterdir():
            if old.is_dir() and any(old.name.startswith(f"{p.key}-") for p in PACKAGES):
                shutil.rmtree(old)
        for package in PACKAGES:
            shutil.copytree(staging / package.folder, TARGET / package.folder)
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {MANIFEST.relative_to(ROOT)}", file=sys.stderr)


def check() -> int:
    """Every file of assets.json is present with its sha256 (no network)."""
    manifest = json.loads(MANIFEST.read_text())
    bad = []
    for entry in manifest.values():
        for name, digest in entry["files"].items():
            path = TARGET / entry["folder"] / name
            if not path.is_file() or sha256(path) != digest:
                bad.append(str(path.relative_to(ROOT)))
    pinned = {p.key: p.version for p in PACKAGES}
    recorded = {key: entry["version"] for key, entry in manifest.items()}
    if pinned != recorded:
        bad.append(f"assets.json has {recorded}, the script pins {pinned}: run it")
    for line in bad:
        print(f"mismatch: {line}", file=sys.stderr)
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify, do not download")
    args = parser.parse_args()
    if args.check:
        return check()
    fetch()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
