"""The `echohub` command: `serve` and `invite` (argparse), on uvloop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from server.engine import EmbeddedEngine, EngineError, running_engine_url
from server.runner import run_worker, worker_main
from server.settings import Settings, SettingsError, settings_from_env
from server.supervisor import EngineKeeper, RestartPolicy, WorkerMaster

log = logging.getLogger("echohub")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="echohub", description="Echo Hub server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (PORT; default 8080)")
    serve.add_argument("--data-dir", help="data directory (ECHOHUB_DATA_DIR; default ./var)")
    serve.add_argument("--redis-url", help="external engine (REDIS_URL); default: embedded")
    serve.add_argument("--workers", type=int, help="processes on one port (ECHOHUB_WORKERS)")
    invite = sub.add_parser("invite", help="print an invite link")
    invite.add_argument("--admin", action="store_true", help="the invite makes an admin")
    invite.add_argument("--uses", type=int, default=1, help="how many sign-ups it allows")
    invite.add_argument("--data-dir", help="data directory of the embedded engine")
    invite.add_argument("--redis-url", help="external engine (REDIS_URL)")
    invite.add_argument("--base-url", help="where the link points (default http://HOST:PORT)")
    cluster = sub.add_parser("cluster", help="run a local Valkey Cluster for the servers")
    cluster.add_argument("--primaries", type=int, default=3, help="primaries (default 3)")
    cluster.add_argument("--replicas", type=int, default=1, help="replicas per primary (default 1)")
    cluster.add_argument("--data-dir", default="./var/cluster", help="default ./var/cluster")
    cluster.add_argument("--host", default="127.0.0.1", help="address the nodes listen on")
    cluster.add_argument(
        "--node-timeout",
        type=int,
        default=1000,
        help="cluster-node-timeout in ms: how soon a failover starts",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return settings_from_env(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=args.data_dir,
        redis_url=args.redis_url,
        workers=getattr(args, "workers", None),
        public_url=getattr(args, "base_url", None),
    )


async def _with_accounts(settings: Settings, url: str, use: Any) -> Any:
    """Run `use(AccountService)` on a short-lived engine client (the CLI's one-off calls)."""
    from server import store
    from server.services.accounts import AccountService
    from server.services.common import system_clock
    from server.store.accounts import AccountStore
    from server.store.resp import EngineClient

    client = store.connect(url)
    engine = EngineClient(url)
    try:
        service = AccountService(
            AccountStore(client, engine), system_clock,
            password_cost=settings.password_cost, session_ttl=settings.session_ttl,
        )  # fmt: skip
        return await use(service)
    finally:
        await engine.aclose()
        await client.aclose()


def restart_policy(settings: Settings) -> RestartPolicy:
    limit, window = settings.restart_limit
    return RestartPolicy(limit=limit, window=window)


def serve(settings: Settings) -> int:
    engine: EmbeddedEngine | None = None
    keeper: EngineKeeper | None = None
    url = settings.redis_url
    if url is None:
        engine = EmbeddedEngine(Path(settings.data_dir))
        url = engine.start()
        keeper = EngineKeeper(engine, restart_policy(settings))
        log.info("embedded engine on %s", url)
    try:
        try:
            link = asyncio.run(
                _with_accounts(settings, url, lambda a: a.admin_invite_if_empty(settings.base_url))
            )
        except RedisError as exc:
            # An external engine that is down is no reason not to start: requests get 503
            # and the bus connects when the engine comes back. `echohub invite --admin`
            # prints a first link later.
            log.warning("engine unreachable at start (%s); serving 503 until it is back", exc)
            link = None
        if link:
            print("No accounts yet. Sign up the first admin with this one-time link:", flush=True)
            print(link, flush=True)
        if settings.workers == 1:
            run_worker(settings, url, None, keeper=keeper)
            failure = keeper.failure if keeper is not None else None
        else:
            master = WorkerMaster(settings.workers, worker_main, (settings, url), keeper,
                                  lambda: restart_policy(settings))  # fmt: skip
            master.run()
            failure = master.failure
        if failure is not None:
            print(f"echohub: stopped: {failure}", file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        if engine is not None:
            engine.stop()


def invite(args: argparse.Namespace, settings: Settings) -> int:
    engine: EmbeddedEngine | None = None
    url = settings.redis_url or running_engine_url(Path(settings.data_dir))
    if url is None:
        engine = EmbeddedEngine(Path(settings.data_dir))
        url = engine.start()
    try:
        created = asyncio.run(_with_accounts(settings, url, lambda a: a.create_invite(
            None, args.uses, 14, settings.base_url, admin=args.admin)))  # fmt: skip
    finally:
        if engine is not None:
            engine.stop()
    print(created["url"])
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from server.cluster import LocalCluster, run_cluster

    cluster = LocalCluster(Path(args.data_dir), primaries=args.primaries, replicas=args.replicas,
                           host=args.host, node_timeout_ms=args.node_timeout)  # fmt: skip
    try:
        return run_cluster(cluster)
    except EngineError as exc:
        print(f"echohub: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "cluster":
        return _cluster(args)
    try:
        settings = _settings(args)
        if args.command == "serve":
            return serve(settings)
        return invite(args, settings)
    except (EngineError, SettingsError) as exc:
        print(f"echohub: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
