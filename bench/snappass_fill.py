"""Pre-create snappass secrets through snappass's own code (its `set_password`, what its
`POST /` calls), and write the reveal path of each, one a line: `/<quoted token>`.

Runs in the peer's virtualenv (bench/.venv-peer) with REDIS_URL set:
    bench/.venv-peer/bin/python bench/snappass_fill.py COUNT OUT_FILE PASSWORD_FILE
"""

import sys
import warnings
from urllib.parse import quote_plus

warnings.simplefilter("ignore", DeprecationWarning)  # snappass 1.6 imports distutils

from snappass.main import set_password  # noqa: E402


def main() -> None:
    count, out, password_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with open(password_file, encoding="utf-8") as f:
        password = f.read()
    with open(out, "w", encoding="utf-8") as f:
        for _ in range(count):
            token = set_password(password, 604800)  # ttl "week", as the benchmark's form posts
            f.write("/" + quote_plus(token) + "\n")


if __name__ == "__main__":
    main()
