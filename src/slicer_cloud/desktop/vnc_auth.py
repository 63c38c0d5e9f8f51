"""VNC password authentication, answered by the bridge itself.

Only for an Xvnc too old to serve VNC on a unix socket, and only with ``--allow-tcp-vnc``: VNC
then listens on a loopback TCP port, which every account on the machine can reach, so Xvnc
demands a random password (VNC authentication) that only this process knows. The bridge
authenticates to Xvnc with it, and offers the browser no security of its own ("None"): the
browser has already passed the token check, and never learns the password.

VNC authentication is DES of a 16-byte challenge with the password as key (RFC 6143 7.2.2), with
VNC's quirk of mirrored key bits. It is weak cryptography, but here it only has to keep other
local accounts off a loopback port, with a random password that never leaves this process.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

#: the fixed key with which VNC password files are obfuscated (all VNC implementations share it)
_PASSWORD_FILE_KEY = bytes([23, 82, 107, 6, 35, 78, 88, 7])
_VERSION_38 = b"RFB 003.008\n"
_SECURITY_NONE = 1
_SECURITY_VNC_AUTH = 2


def _des_encrypt(key: bytes, data: bytes) -> bytes:
    try:  # where the cryptography package keeps DES since version 43
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # pragma: no cover - older cryptography
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    mirrored = bytes(int(f"{byte:08b}"[::-1], 2) for byte in key.ljust(8, b"\0")[:8])
    encryptor = Cipher(TripleDES(mirrored * 3), modes.ECB()).encryptor()  # three equal keys: DES
    return encryptor.update(data) + encryptor.finalize()


def new_password() -> bytes:
    """8 random characters: VNC authentication uses no more."""
    return secrets.token_urlsafe(8)[:8].encode()


def write_password_file(path: Path, password: bytes) -> None:
    """The file Xvnc's ``-PasswordFile`` reads, readable by this account only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(_des_encrypt(_PASSWORD_FILE_KEY, password))


def challenge_response(password: bytes, challenge: bytes) -> bytes:
    return _des_encrypt(password, challenge)


async def authenticate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, password: bytes) -> None:
    """Take a fresh connection to the VNC server through its security handshake (RFB 3.8), up to
    the point where the client sends ClientInit. Raises ConnectionError when refused."""
    server_version = await reader.readexactly(12)
    if not server_version.startswith(b"RFB 003."):
        raise ConnectionError(f"not a VNC server: {server_version!r}")
    writer.write(_VERSION_38)
    count = (await reader.readexactly(1))[0]
    if count == 0:
        raise ConnectionError(f"the VNC server refused the connection: {await _reason(reader)}")
    offered = await reader.readexactly(count)
    if _SECURITY_VNC_AUTH not in offered:
        raise ConnectionError(f"the VNC server does not offer password authentication (it offers {list(offered)})")
    writer.write(bytes([_SECURITY_VNC_AUTH]))
    challenge = await reader.readexactly(16)
    writer.write(challenge_response(password, challenge))
    await writer.drain()
    (result,) = struct.unpack(">I", await reader.readexactly(4))
    if result != 0:
        raise ConnectionError(f"the VNC server refused the password: {await _reason(reader)}")


async def _reason(reader: asyncio.StreamReader) -> str:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return (await reader.readexactly(min(length, 4096))).decode("utf-8", "replace")


async def answer_browser(read_exactly: Callable[[int], Awaitable[bytes]], send: Callable[[bytes], Awaitable[None]]) -> None:
    """Play the VNC server's side of the security handshake for the browser, offering "None":
    the browser has passed the token check already. RFB 3.3, 3.7 and 3.8 clients are served;
    afterwards the two sides speak the same protocol (ClientInit onwards)."""
    await send(_VERSION_38)
    version = await read_exactly(12)
    if not version.startswith(b"RFB 003."):
        raise ConnectionError(f"not a VNC client: {version!r}")
    minor = int(version[8:11]) if version[8:11].isdigit() else 0
    if minor < 7:  # 3.3: the server names the security type
        await send(struct.pack(">I", _SECURITY_NONE))
        return
    await send(bytes([1, _SECURITY_NONE]))
    chosen = (await read_exactly(1))[0]
    if chosen != _SECURITY_NONE:
        raise ConnectionError(f"the VNC client chose security type {chosen}, not None")
    if minor >= 8:
        await send(struct.pack(">I", 0))


__all__ = ["answer_browser", "authenticate", "challenge_response", "new_password", "write_password_file"]
