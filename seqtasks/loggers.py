"""Logger factories that need more than a `_target_` (the rest are Lightning's own classes)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc(os.environ.get("NETRC", Path.home() / ".netrc")).hosts
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def wandb_logger(**options):
    """WandbLogger that runs offline when no API key is configured, so it never prompts or blocks;
    sync later with `wandb sync <run dir>/wandb/offline-run-*`."""
    from lightning.pytorch.loggers import WandbLogger

    if options.get("offline") is None:
        options["offline"] = os.environ.get("WANDB_MODE") == "offline" or not wandb_has_credentials()
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(**options)
