"""``campaign db upgrade``: the store's migrations, run on purpose."""

from __future__ import annotations

import argparse

from include.cli.common import (
    Commands,
    masked_url,
)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from include.store.db import upgrade

    url = upgrade(args.url)
    print(f"战役状态库已升级到最新版本：{masked_url(url)}")
    return 0


def register(commands: Commands) -> None:
    db = commands.add_parser("db", help="战役状态库")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="子命令")
    db_upgrade = db_commands.add_parser("upgrade", help="执行数据库迁移到最新版本")
    db_upgrade.add_argument("--url", help="数据库 URL（默认 CAMPAIGN_DB_URL 或主目录下的 SQLite）")
    db_upgrade.set_defaults(handler=cmd_db_upgrade)
