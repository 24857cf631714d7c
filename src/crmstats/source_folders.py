"""Which folders may be a data source: never a system, credential, top-level or home folder.

Used by the reader (:mod:`crmstats.sources`) and by ``source init``
(:mod:`crmstats.source_init`) alike.
"""

from __future__ import annotations

from pathlib import Path

from crmstats.exceptions import DataError

#: Folders a source may never read from, with everything under them: the system's own
#: files, and the places a user keeps credentials (see README "Source files").
_SYSTEM_TREES = ("/etc", "/proc", "/sys", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32",
                 "/lib64", "/libx32", "/boot", "/run", "/var/lib", "/var/log", "/var/run",
                 "/var/spool", "/var/mail", "/var/cache", "/var/db", "/root", "/System",
                 "/Library", "/private/etc", "/private/var/db", "/private/var/root",
                 "/private/var/log")
_SECRET_HOME_FOLDERS = (".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker",
                        ".password-store", ".config/gcloud", ".config/crmstats")
#: Folders that are never a data source themselves (a folder inside them may be).
_ROOT_FOLDERS = ("/", "/home", "/Users", "/mnt", "/media", "/srv", "/opt", "/var", "/tmp",
                 "/var/tmp", "/private", "/Volumes")


def _home_folders() -> set[Path]:
    """Every user's home folder (the root of each; the folders inside are the users')."""
    homes = {Path.home()}
    try:
        import pwd

        homes |= {Path(e.pw_dir) for e in pwd.getpwall() if e.pw_dir not in ("", "/")}
    except ImportError:  # Windows: no user database
        pass
    return homes


def _system_folder(folder: Path) -> str | None:
    """Why ``folder`` (resolved) may not be read as a data source, or None if it may."""
    home = Path.home().resolve()
    trees = [Path(t) for t in _SYSTEM_TREES if Path(t) != home]
    trees += [home / s for s in _SECRET_HOME_FOLDERS]
    for tree in trees:
        if folder == tree or folder.is_relative_to(tree):
            return f"it is inside {tree}, a folder of the system or of credentials"
    if folder in {Path(r) for r in _ROOT_FOLDERS} or folder in _home_folders():
        return "it is a top-level or home folder, not a folder of data"
    return None


def _check_folder(folder: Path, where: str, named: str) -> None:
    reason = _system_folder(folder)
    if reason:
        raise DataError(f"{where}: the folder {named!r} cannot be a data source: {reason}. "
                        "Put the export in a folder of its own")
