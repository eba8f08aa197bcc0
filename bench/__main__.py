"""python -m bench [--quick] [--only PART ...] [--hosts 50,100,...] [--gateway-hosts 1000,2000,...] [--gateway-cycles N]
[--extra-processes N] [--output FILE]
(docs/benchmarks.md)"""

import argparse
import dataclasses
import sys
from pathlib import Path

from bench import report
from bench.suite import PARTS, QUICK, Settings, run
from pipeline.testing import GATEWAYS


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def parse(argv: list[str]) -> tuple[Settings, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check that everything runs (~1 min)")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--hosts", help="simulated-host steps, comma-separated, tried in order until one fails")
    parser.add_argument("--interval", type=float, help="export interval of the simulated hosts, seconds")
    parser.add_argument("--cycles", type=int, help="steady export cycles per step")
    parser.add_argument("--gateway-hosts", help="load-generator host steps of the gateway part, comma-separated "
                        "(instead of the default steps and the one at the target's rate)")
    parser.add_argument("--gateways", nargs="+", choices=GATEWAYS, help="gateways the gateway part measures")
    parser.add_argument("--gateway-cycles", type=positive,
                        help="steady cycles of each gateway step (after its warm-up)")
    parser.add_argument("--cost-cycles", type=int, help="cycles measured per process for CPU and memory")
    parser.add_argument("--extra-processes", type=int, help="idle processes started for the latency part")
    parser.add_argument("--output", type=Path, help="also write the Markdown results to this file")
    args = parser.parse_args(argv)
    overrides = {"parts": tuple(args.only) if args.only else None,
                 "hosts": tuple(int(n) for n in args.hosts.split(",")) if args.hosts else None,
                 "gateway_hosts": tuple(int(n) for n in args.gateway_hosts.split(",")) if args.gateway_hosts else None,
                 "gateways": tuple(args.gateways) if args.gateways else None, "gateway_cycles": args.gateway_cycles,
                 "interval": args.interval, "cycles": args.cycles, "cost_cycles": args.cost_cycles,
                 "extra_processes": args.extra_processes}
    if args.gateway_hosts:
        overrides["gateway_target_step"] = False
    base = QUICK if args.quick else Settings()
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None}), args.output


def main(argv: list[str] | None = None) -> int:
    settings, output = parse(sys.argv[1:] if argv is None else argv)
    text = report.render(run(settings, progress=lambda line: print(line, file=sys.stderr, flush=True)))
    print(text)
    if output:
        output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
