"""All-or-nothing output folders: everything is written into a hidden temporary folder beside --out and
moved into place only when the conversion succeeded, so a failure never leaves half-written files."""

import os
import shutil
import tempfile
from typing import Iterable

from . import ConvertError


class OutputFolder:
    def __init__(self, out: str, names: Iterable[str], force: bool = False):
        self.out = os.path.abspath(out)
        parent = os.path.dirname(self.out)
        if os.path.exists(self.out) and not os.path.isdir(self.out):
            raise ConvertError(f"--out {out}: exists and is not a folder")
        if not os.path.isdir(parent):
            raise ConvertError(f"--out {out}: the parent folder {parent} does not exist")
        clashes = [n for n in names if os.path.exists(os.path.join(self.out, n))]
        if clashes and not force:
            raise ConvertError(
                f"--out {out}: already holds {', '.join(clashes)}; choose another folder or pass --force to overwrite"
            )
        self.tmp = None
        self.parent = parent

    def __enter__(self) -> "OutputFolder":
        self.tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(self.out)}.tmp-", dir=self.parent)
        return self

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._commit()
        finally:
            if self.tmp and os.path.isdir(self.tmp):
                shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def _commit(self) -> None:
        if not os.path.exists(self.out):
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp's folder is private
            os.rename(self.tmp, self.out)
            return
        for name in sorted(os.listdir(self.tmp)):
            os.replace(os.path.join(self.tmp, name), os.path.join(self.out, name))
