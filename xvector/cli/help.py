"""``--help`` of the Hydra entry points: only the config groups each command composes.

Hydra's default help lists every group under ``configs/``, so ``xvector-train --help`` offered
``backend=plda`` (a scoring group) and ``xvector-score --help`` the nets and optimizers. The
templates in ``configs/hydra/help/`` call the resolvers registered here instead, which list the
options found on disk at run time (a new net or back end shows up without editing a list):

* ``${xvector_groups:backend,norm}``: those groups;
* ``${xvector_groups_except:backend,norm}``: every group but those (and Hydra's own).

Example:
    >>> print(config_groups(["norm"]))
    norm: asnorm, none, snorm
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from omegaconf import OmegaConf

from xvector import CONFIG_DIR


def _groups() -> dict[str, list[str]]:
    """``{group: sorted options}`` of the config folders holding ``.yaml`` files (nested as ``a/b``)."""
    root = Path(CONFIG_DIR)
    out: dict[str, list[str]] = {}
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        name = folder.relative_to(root).as_posix()
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if options and name.split("/")[0] != "hydra":
            out[name] = options
    return out


def config_groups(include: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> str:
    """``group: option, option`` lines for ``include`` (default: all groups) minus ``exclude``."""
    groups = _groups()
    names = [g for g in (groups if include is None else include) if g in groups and g not in set(exclude)]
    return "\n".join(f"{g}: {', '.join(groups[g])}" for g in names)


OmegaConf.register_new_resolver("xvector_groups", lambda *names: config_groups(names), replace=True)
OmegaConf.register_new_resolver("xvector_groups_except", lambda *names: config_groups(exclude=names), replace=True)
