"""Inputs the header fuzzer (benchmarks/fuzz_headers.py) made crash a reader, kept as they were
found (zlib-compressed, base64) so each stays a regression test. make_corpus.py turns each into a
corpus case; README.md says what each one broke and when it was found.
"""

from __future__ import annotations

import base64
import zlib

FINDS: dict[str, tuple[str, str]] = {
    # name: (file name, compressed base64 bytes)
    # 2026-12-02, DICOM: BitsAllocated (US) 485 bytes long; pydicom raised BytesLengthException
    # when the value was first read, after dcmread had returned
    "fuzz_dicom_wrong_value_length": ("wrong_value_length.dcm", (
    "eNrFU81u00AQnjgmskqoXFqqCnEwQkK+xNofr9d7QQ1JIZaSOI1TQasIigoSSIVW0J7hQfoCXPooiEfgUfjWVklTVFrBAY+S"
    "+Wa+2fnzmuj/Pt2sM3Cgt/oufYN2qEb5Y6vx1BzorewuiUhEacwizhhLIxXxKMaPRwJ8HRHrxG2ESCLERDJJGYtllEaxSaM0"
    "4cyksVQ4mjAtlJCKCyBuOGeKxcowKR3ykWelyvOrkrU4atwGd+8PNWzMMhW9RRptY6J8EEhEicCjG9QpFigr8pfZOEBSjzx4"
    "VikfZ0+zYbs/HY2zQXu8PW0/z9p9j1bLefml83q0Npv369/P61FA3bZHgoHijHt0/4L94ILNaDJoEBdoCVPwOUvOWSNsgtDp"
    "LiZ1qDPx6JD6eZM+7b/be/Oxtbd/cPwa+fx+vjLnCw7fvvpwdPDeo0fgGlTsHRwfBT7ezGi4QKOKfNGZ+Oi9n6NOrz2cYNc+"
    "KfRKiFsvK+bBGt0BalCnt1FMYI2oW7i4RQp4t8ToFZg2O8C9J0UQ0K0r7pFOtRLcmNgkRhvFZKIVE1hrLASTRurEcCMDWrzq"
    "PmphUoVVJalhKRM6RUpjlBY6FlwyphLOkwDTFD2HODpbwv2p0HKJBJDAFE1q6UhNWwp/DD5d+viUlcJL3/iKbkwqdcq0Qf8x"
    "yieSG61UkkgRY0zJFKYTPKB1vBHC3tt+Fx2wILRfZmG/1pBc7LpJg3yYd3rjfLAhwPol2wS7VCIfiFWbn3LwOEiVt1Y7i3RK"
    "dBOoXiICGpX1YhbSpm9Px8zWHgM3qMWZiGEVD7vlfkKaoEuHels/PvuUPyP6gipr1xHvOlEn9ZN66Iau1b9zlgndFUiFzsdY"
    "+5ROoVulVDh0Z2etx0rL/X4WYEOqJOcDbIEzPCti+eq3A5lZ8y1clMuGmG/+X+UnsGzvQQ=="
    )),
}


def find_bytes(name: str) -> bytes:
    return zlib.decompress(base64.b64decode(FINDS[name][1]))
