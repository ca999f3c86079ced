"""A client of infra.v1.BackupService in another language than the server's.

Driven by crates/grpc/tests/python_client.rs. Stubs are generated from
proto/infra/v1/backup.proto by grpcio-tools into STUBS before this runs;
custodian submissions are encrypted here with pyrage (age in Rust, bound
for Python; not the server's age implementation's code path).

    client.py status  CONFIG   -> reflection's service list, status, share
                                  listing (paged), StartRecovery
    client.py recover CONFIG   -> RecoverMPCShare: one forgery, then the shares

CONFIG is a JSON file: target, ca/cert/key PEM paths, stubs directory and
the step's inputs. The result is one JSON object on stdout.
"""

import json
import sys

import grpc


def channel(config):
    with open(config["ca"], "rb") as f:
        ca = f.read()
    with open(config["cert"], "rb") as f:
        cert = f.read()
    with open(config["key"], "rb") as f:
        key = f.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    # The server's certificate names localhost; connect to the loopback
    # address it listens on.
    return grpc.secure_channel(
        config["target"],
        credentials,
        options=[("grpc.ssl_target_name_override", "localhost")],
    )


def services(channel):
    """The services the server lists through gRPC server reflection."""
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())


def status(stub, pb, config):
    version = pb.NodeVersion(
        key_id=config["key_id"], node_id=config["node_id"], version=config["version"]
    )
    status = stub.GetBackupStatus(
        pb.GetBackupStatusRequest(key_id=config["key_id"], node_id=config["node_id"])
    )
    shares = []
    pages = 0
    token = ""
    while True:
        page = stub.ListBackupShares(
            pb.ListBackupSharesRequest(
                key_id=config["key_id"],
                node_id=config["node_id"],
                version=config["version"],
                page_size=1,
                page_token=token,
            )
        )
        pages += 1
        shares.extend(
            {
                "index": share.slot.index,
                "state": pb.SlotState.Name(share.state),
                "kek_id": share.kek_id,
            }
            for share in page.shares
        )
        token = page.next_page_token
        if not token:
            break
    started = stub.StartRecovery(
        pb.StartRecoveryRequest(
            approval_request_hash=bytes.fromhex(config["approval_request_hash"]),
            version=version,
            target=config["target_dir"],
            allow_server_shares=False,
            ticket=config["ticket"],
            risk_note_hash=bytes.fromhex(config["risk_note_hash"]),
        )
    )
    return {
        "versions": [
            {
                "key_id": v.version.key_id,
                "node_id": v.version.node_id,
                "version": v.version.version,
                "threshold": v.threshold,
                "shares": v.shares,
                "curve": v.curve,
                "state": pb.KeyVersionState.Name(v.state),
                "server_shares_held": v.server_shares_held,
                "external_confirmed": v.external_confirmed,
                "recoverable": v.recoverable,
            }
            for v in status.versions
        ],
        "shares": shares,
        "share_pages": pages,
        "session_id": started.session_id.hex(),
        "descriptor": started.descriptor.hex(),
        "threshold": started.threshold,
    }


def recover(stub, pb, config):
    import pyrage

    recipient = pyrage.x25519.Recipient.from_str(config["recipient"])
    sealed = []
    for path in config["submissions"]:
        with open(path, "rb") as f:
            sealed.append(pyrage.encrypt(f.read(), [recipient]))
    session = bytes.fromhex(config["session_id"])

    def answer(reply):
        return {
            "success": reply.success,
            "state": pb.RecoveryState.Name(reply.state),
            "shares_received": reply.shares_received,
            "threshold": reply.threshold,
            "received_indices": list(reply.received_indices),
            "rejected": [
                {
                    "position": r.position,
                    "index": r.index,
                    "reason": pb.ShareRejectionReason.Name(r.reason),
                }
                for r in reply.rejected
            ],
        }

    # A forgery first: well-formed age to the session's recipient, but not
    # a custodian's signed submission.
    forged = pyrage.encrypt(b"shkp-rsb not a submission", [recipient])
    first = stub.RecoverMPCShare(
        pb.RecoverMPCShareRequest(session_id=session, share_data=[forged, sealed[0]])
    )
    done = stub.RecoverMPCShare(
        pb.RecoverMPCShareRequest(session_id=session, share_data=sealed[1:])
    )
    return {"first": answer(first), "done": answer(done)}


def main():
    step, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        config = json.load(f)
    sys.path.insert(0, config["stubs"])
    from infra.v1 import backup_pb2 as pb
    from infra.v1 import backup_pb2_grpc as pb_grpc

    connection = channel(config)
    stub = pb_grpc.BackupServiceStub(connection)
    result = {"status": status, "recover": recover}[step](stub, pb, config)
    if step == "status":
        result["services"] = services(connection)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
