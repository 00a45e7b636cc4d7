"""tvmedge sign ARTIFACT --key K | verify ARTIFACT --pub P | keygen --key K --pub P"""

from tvmedge import api


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sign", help="sign an artifact (OpenSSF model-signing format, ECDSA P-256, offline)"
    )
    p.add_argument("artifact", help="the NAME.tvmedge directory")
    p.add_argument("--key", required=True, help="the PEM private key (from `tvmedge keygen`)")
    p.set_defaults(handler=handle_sign)

    p = sub.add_parser(
        "verify", help="verify an artifact's signature and every file it lists (offline)"
    )
    p.add_argument("artifact", help="the NAME.tvmedge directory")
    p.add_argument("--pub", required=True, help="the PEM public key of the signer")
    p.set_defaults(handler=handle_verify)

    p = sub.add_parser("keygen", help="write a new ECDSA P-256 key pair for `tvmedge sign`")
    p.add_argument("--key", required=True, help="private key file to write (mode 0600)")
    p.add_argument("--pub", required=True, help="public key file to write")
    p.add_argument("--force", action="store_true", help="replace existing key files")
    p.set_defaults(handler=handle_keygen)


def handle_sign(args) -> int:
    statement = api.sign(args.artifact, key=args.key)
    files = statement["predicate"]["resources"]
    print(f"signed {args.artifact}: {len(files)} files, signature in {args.artifact}/model.sig")
    return 0


def handle_verify(args) -> int:
    statement = api.verify(args.artifact, public_key=args.pub)
    names = ", ".join(r["name"] for r in statement["predicate"]["resources"])
    print(f"verified {args.artifact} with {args.pub}: {names}")
    return 0


def handle_keygen(args) -> int:
    api.keygen(key=args.key, pub=args.pub, force=args.force)
    print(f"wrote {args.key} (keep it secret) and {args.pub} (give it to the devices)")
    return 0
