"""Write generated files atomically: all of them or none.

Emitters return ``{relative filename: text}``; this module is the only one that touches disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import OutputPathError


def write_tree(files: dict[str, str | bytes], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``files`` under ``out_dir``.

    Everything is first written to a temporary folder next to ``out_dir``; only when every
    file is complete are they moved into place: the folder itself with one rename when
    ``out_dir`` does not exist yet, else file by file with atomic renames, putting back every
    earlier file (or removing it) if one rename fails. A failure leaves ``out_dir`` as it was.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"output path {out} exists and is not a directory")
    for name in files:
        p = Path(name)
        if p.is_absolute() or ".." in p.parts:
            raise OutputPathError(f"refusing to write {name!r} outside {out}")
    parent = out.resolve().parent
    if not parent.exists():
        raise OutputPathError(f"parent folder {parent} of {out} does not exist")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise OutputPathError(f"cannot write to {out}: permission denied")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the folder may become out_dir itself
    except OSError as e:
        raise OutputPathError(f"cannot write to {out}: {e.strerror}") from None
    try:
        for name, content in files.items():
            dst = tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            with open(dst, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        created_dir = False
        if not out.exists():
            try:
                os.rename(tmp, out)
                return [out / n for n in files]
            except OSError:
                out.mkdir(parents=True, exist_ok=True)
                created_dir = True
        # Move each file into place; on any failure put every earlier file back as it was.
        backup = tmp / ".previous"
        done: list[tuple[Path, Path | None]] = []  # (destination, its backup or None)
        try:
            for i, name in enumerate(files):
                dst = out / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                saved = None
                if dst.exists():
                    backup.mkdir(exist_ok=True)
                    saved = backup / str(i)
                    os.replace(dst, saved)
                done.append((dst, saved))
                os.replace(tmp / name, dst)
        except OSError:
            for dst, saved in reversed(done):
                try:
                    if saved is not None:
                        os.replace(saved, dst)
                    elif dst.exists():
                        dst.unlink()
                except OSError:
                    pass
            if created_dir:
                shutil.rmtree(out, ignore_errors=True)
            raise
        return [out / n for n in files]
    except OSError as e:
        raise OutputPathError(f"cannot write to {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
