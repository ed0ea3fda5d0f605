"""The development commands, added to ``campaign`` where devtools is installed (not in the
production image): a simulated campaign on a real Airflow, synthetic workbooks."""

from __future__ import annotations

import argparse
from pathlib import Path

from include.cli.common import (
    Commands,
    UsageError,
    campaign_form,
    duration_option,
    load_calendar,
)


def cmd_simulate(args: argparse.Namespace) -> int:
    from include.devtools.simulation import simulate

    load_calendar(args.id)
    passed = simulate(
        args.id,
        duration_option(args.span, "--span"),
        seed=args.seed,
        startup=args.startup,
        executor=args.executor,
        workers=args.workers,
        drills=tuple(args.drill),
        outcome_file=Path(args.outcome) if args.outcome else None,
        limits={} if args.airflow_limits == "airflow-defaults" else None,
        out=lambda line: print(line, flush=True),
    )
    return 0 if passed else 1


def cmd_synth(args: argparse.Namespace) -> int:
    from include.devtools.synth import synthesize

    calendar = load_calendar(args.campaign)
    if args.households < 1:
        raise UsageError("--households 至少为 1")
    if not 0 <= args.defect_rate <= 1:
        raise UsageError("--defect-rate 应在 0 到 1 之间")
    form = campaign_form(calendar, args.form) if args.form else None
    units = args.units.split(",") if args.units else None
    for unit in units or []:
        if not calendar.may_upload(unit):  # a city's, or a county's own
            raise UsageError(f"--units：{calendar.name}没有可以上传工作簿的单位“{unit}”")
    truth = synthesize(
        calendar,
        Path(args.out),
        households=args.households,
        defect_rate=args.defect_rate,
        seed=args.seed,
        form=form,
        units=units,
        progress=print,
    )
    truth_file = Path(args.out) / "ground_truth.json"
    print(f"共 {len(truth['files'])} 个工作簿，注入缺陷 {len(truth['defects'])} 处 → {truth_file}")
    return 0


def register(commands: Commands) -> None:
    simulate = commands.add_parser("simulate", help="在真实 Airflow 上模拟一次压缩的战役并给出核对结论")
    simulate.add_argument("id", metavar="ID")
    simulate.add_argument("--span", required=True, help="全程时长，如 3m")
    simulate.add_argument("--seed", type=int, default=2020, help="模拟报送的随机种子")
    simulate.add_argument("--startup", type=float, default=100.0, help="Airflow 启动预留秒数（默认 100）")
    simulate.add_argument(
        "--executor",
        choices=["local", "celery"],
        default="local",
        help="local：LocalExecutor 与 SQLite（各组件由看护进程守护）；celery：PostgreSQL、Redis 与多个 Celery worker",
    )
    simulate.add_argument(
        "--airflow-limits",
        choices=["measured", "airflow-defaults"],
        default="measured",
        help="本地运行的并发上限：measured 为本机实测值（默认），airflow-defaults 为 Airflow 的默认值（供对比）",
    )
    simulate.add_argument("--workers", type=int, default=2, help="Celery worker 个数（默认 2）")
    simulate.add_argument(
        "--drill",
        action="append",
        default=[],
        choices=["restart-scheduler", "kill-triggerer"],
        help="故障演练：restart-scheduler（仅 celery）；kill-triggerer（由看护进程重启）",
    )
    simulate.add_argument("--outcome", metavar="FILE", help="把结果（状态、闸门、运行状态）写成 JSON，便于比较两次运行")
    simulate.set_defaults(handler=cmd_simulate)

    synth = commands.add_parser("synth", help="生成各单位的模拟填报工作簿（含已知缺陷与标准答案）")
    synth.add_argument("--campaign", required=True)
    synth.add_argument("--households", type=int, required=True, help="总户数，平均分到各单位")
    synth.add_argument("--defect-rate", type=float, default=0.0, help="每户注入一个缺陷的概率（0–1）")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True)
    synth.add_argument("--form", help="表编号；缺省为本工作含家庭成员的户表")
    synth.add_argument("--units", help="只为这些单位生成，逗号分隔")
    synth.set_defaults(handler=cmd_synth)
