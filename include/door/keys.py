"""The key tokens are hashed with (its pepper), read from the environment: a module of its own, without the
store, so that the api-server's plugin can check it at start-up without loading the web app (include/web/mount.py).

``CAMPAIGN_TOKEN_PEPPER`` is the key; ``CAMPAIGN_TOKEN_PEPPER_PREVIOUS`` is still accepted while it is rotated.
Outside a local run a missing or short key is an error.
"""

from __future__ import annotations

import os

from include.paths import is_local_run

_DEV_PEPPER = "campaign-local-development-pepper"
MIN_PEPPER = 32


class TokenConfigError(RuntimeError):
    """The token key is not configured where it must be; the message says what to set."""


def peppers() -> list[str]:
    """The current key first, then the previous one during a rotation."""
    current = os.environ.get("CAMPAIGN_TOKEN_PEPPER") or ""
    previous = os.environ.get("CAMPAIGN_TOKEN_PEPPER_PREVIOUS") or ""
    if not current:
        if not is_local_run():
            raise TokenConfigError(
                "未设置令牌密钥 CAMPAIGN_TOKEN_PEPPER：生产环境必须设置（至少 32 个随机字符，如 "
                "`openssl rand -hex 32`），否则令牌将以公开的开发密钥保存。本地试运行请设置 CAMPAIGN_LOCAL_RUN=1。"
            )
        current = _DEV_PEPPER
    elif len(current) < MIN_PEPPER and not is_local_run():
        raise TokenConfigError(
            f"令牌密钥 CAMPAIGN_TOKEN_PEPPER 过短（{len(current)} 个字符）：生产环境至少 {MIN_PEPPER} 个随机字符，"
            "如 `openssl rand -hex 32`。"
        )
    return [current, previous] if previous and previous != current else [current]


def check_configuration() -> None:
    """Fail at start-up, not at the first request, when the key is missing."""
    peppers()
