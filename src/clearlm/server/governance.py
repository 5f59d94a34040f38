"""(being built)"""

from __future__ import annotations

from clearlm.server.routes import api_router

router = api_router()
