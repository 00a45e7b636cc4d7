"""tvmedge targets [list | show NAME | validate FILE]"""

import json
from pathlib import Path

from tvmedge import targets as registry


def add_parser(sub) -> None:
    p = sub.add_parser("targets", help="list, show or validate targets")
    p.add_argument("action", nargs="?", default="list", choices=("list", "show", "validate"))
    p.add_argument("name", nargs="?", help="target name (show) or TOML file (validate)")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    if args.action == "list":
        for name in registry.names():
            t = registry.get(name)
            print(f"{name:20s} {t.family:8s} {t.description}")
    elif args.action == "show":
        print(json.dumps(registry.get(args.name or "host").to_json(), indent=2))
    else:
        if not args.name:
            raise registry.TargetError("targets validate needs a FILE argument")
        t = registry.parse_target_file(Path(args.name))
        print(f"{args.name}: valid ({t.describe()})")
    return 0
