"""Tenants' knowledge bases kept apart: each tenant sees only its own names.

The ``default`` tenant (open access, and keys created without a tenant) keeps the layout knowledge bases had
before tenants existed, so existing bases stay where they are: embedded ones in ``ROOT/NAME/``, PostgreSQL
ones as rows of tenant ``default``. Another tenant's embedded bases live in ``ROOT/.tenants/TENANT/NAME/``
(a knowledge base name cannot start with '.', so no name of the default tenant can reach them); in
PostgreSQL, ``kb_bases.tenant`` tells them apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from clearlm.errors import InvalidInputError

DEFAULT_TENANT = "default"
TENANTS_FOLDER = ".tenants"
# Wider than the names `clearlm keys create --tenant` accepts, so that a key created before tenants were
# checked still works; narrow enough to be one folder name anywhere.
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_tenant(tenant: str) -> str:
    """Raises InvalidInputError unless ``tenant`` can name a folder: 1-64 letters, digits, '_', '.', '-',
    starting with a letter or digit."""
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise InvalidInputError(f"a tenant is named by 1-64 letters, digits, '_', '.' or '-'; got {tenant!r}")
    return tenant


def tenant_folder(root: str | Path, tenant: str = DEFAULT_TENANT) -> Path:
    """Where ``tenant``'s share of the folder ``root`` lies: ``root`` itself for the default tenant, else
    ``root/.tenants/TENANT``.

    Raises:
        InvalidInputError: a tenant name that cannot name a folder.
    """
    check_tenant(tenant)
    root = Path(root)
    return root if tenant == DEFAULT_TENANT else root / TENANTS_FOLDER / tenant
