"""Each load-test scenario, briefly, against a real Echo Hub (and the socket.io peer).

The servers are started the way ``echohub-loadtest`` starts them (loopback, a private
engine). The assertions are about accounting, never about timing: a healthy run loses
nothing, a deliberately dropped subscriber shows up as loss, resume leaves no gap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtest.local import LocalServer, local_server
from loadtest.runner import Progress, RunConfig, run

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def echohub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with local_server("echohub", workdir=tmp_path_factory.mktemp("lt-echohub")) as srv:
        yield srv


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lt-accounts") / "accounts.json"


def config(srv: LocalServer, accounts_file: Path | None = None, **kw: Any) -> RunConfig:
    base: dict[str, Any] = {
        "target": srv.target,
        "url": srv.url,
        "server_pid": srv.pid,
        "invite": srv.invite,
        "data_dir": str(srv.data_dir) if srv.data_dir else None,
        "accounts_file": str(accounts_file) if accounts_file else None,
        "procs": 2,
        "accounts": 10,
        "drain": 5.0,
        "seed": 7,
    }
    base.update(kw)
    return RunConfig(**base)


def quiet() -> Progress:
    return Progress(quiet=True)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_fanout_delivers_everything_once(
    echohub: LocalServer, accounts_file: Path, codec: str
) -> None:
    cfg = config(echohub, accounts_file, clients=20, posters=2, rate=20, duration=2, codec=codec)
    r = run(cfg, quiet())
    d = r["delivery"]
    assert r["connect"]["connected"] == 20
    assert d["posted"] == 40 and d["post_errors"] == 0
    assert d["expected"] == 40 * 20
    assert d["delivered"] == d["expected"]
    assert d["lost"] == 0 and d["duplicated"] == 0 and d["unexpected"] == 0
    assert r["latency_us"]["count"] > 0
    assert 0 < r["posting"]["per_s"] and r["posting"]["lag_max_us"] >= r["posting"]["lag_p50_us"]
    assert r["server"]["cpu_s"] >= 0
    assert r["machine"]["cores"] and r["machine"]["others_cpu_s"] >= 0
    assert r["params"]["poster_proc"] and len(r["client_cpu"]) == 3  # 2 procs + posters
    assert r["throughput"]["frames_per_read"] > 0  # (subscribe acks are reads too)
    assert r["timeline"], "progress intervals were recorded"


def test_dropped_subscribers_show_as_loss(echohub: LocalServer, accounts_file: Path) -> None:
    cfg = config(echohub, accounts_file, clients=20, rate=20, duration=3, drop=3)
    r = run(cfg, quiet())
    d = r["delivery"]
    assert d["expected"] == d["posted"] * 20
    assert d["lost"] > 0  # the three killed mid-run miss the second half
    assert d["delivered"] + d["lost"] == d["expected"]
    # only the killed subscribers lose: at most the posts of the whole run each
    assert d["lost"] <= 3 * d["posted"]
    assert d["duplicated"] == 0


def test_resume_has_no_gaps_or_duplicates(echohub: LocalServer, accounts_file: Path) -> None:
    cfg = config(
        echohub, accounts_file, scenario="resume", clients=12, rate=20, duration=3,
        resume_fraction=0.5, downtime=0.3,
    )  # fmt: skip
    r = run(cfg, quiet())
    res = r["resume"]
    assert res["clients_dropped"] == 6
    assert res["reconnects"] == res["clients_dropped"]
    assert res["recovered_true"] == res["reconnects"]  # one topic per subscriber
    assert res["gaps"] == 0 and res["duplicates"] == 0
    assert r["delivery"]["delivered"] == r["delivery"]["expected"]


def test_connect_storm_counts_every_socket(echohub: LocalServer, accounts_file: Path) -> None:
    cfg = config(echohub, accounts_file, scenario="connect", clients=150, sources=3, hold=1.0)
    r = run(cfg, quiet())
    assert r["connect"]["attempted"] == 150
    assert r["connect"]["connected"] == 150 and r["connect"]["failed"] == 0
    assert r["connect"]["per_s"] > 0
    assert r["server"]["rss_kb"] > 0


def test_wrong_token_is_a_connect_failure(echohub: LocalServer) -> None:
    cfg = config(
        echohub, None, scenario="connect", clients=5, procs=1, hold=0.1, token="not-a-token"
    )
    cfg.invite = None
    with pytest.raises(Exception, match="401"):
        run(cfg, quiet())  # creating invites with a bad token is refused up front


def test_footprints_notify_once_per_visitor(echohub: LocalServer) -> None:
    cfg = config(echohub, None, scenario="footprints", visitors=4, owners=3, rate=50, duration=1)
    r = run(cfg, quiet())
    fp = r["footprints"]
    assert fp["visits"] == 12
    assert fp["notifications"] == fp["visits"]
    assert fp["repeat_notifications"] == 0
    assert r["delivery"]["duplicated"] == 0


def test_socketio_peer_fanout_and_drop(tmp_path: Path) -> None:
    with local_server("socketio", workdir=tmp_path) as srv:
        ok = run(config(srv, clients=20, rate=20, duration=2), quiet())
        assert ok["delivery"]["lost"] == 0
        assert ok["delivery"]["delivered"] == ok["delivery"]["expected"] == 40 * 20
        dropped = run(config(srv, clients=20, rate=20, duration=3, drop=2), quiet())
        assert dropped["delivery"]["lost"] > 0


def test_cli_writes_json_and_html(echohub: LocalServer, tmp_path: Path) -> None:
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    argv = [
        sys.executable, "-m", "loadtest", "fanout", "--url", echohub.url,
        "--invite", "unused" if False else str(echohub.invite),
        "--clients", "5", "--rate", "10", "--duration", "1", "--procs", "1",
        "--server-pid", str(echohub.pid), "--json", str(out_json), "--html", str(out_html),
    ]  # fmt: skip
    # the admin invite may already be used up by the module's runs: pass the data dir too
    argv[argv.index("--invite") : argv.index("--invite") + 2] = [
        "--data-dir",
        str(echohub.data_dir),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "delivered/s" in proc.stdout
    result = json.loads(out_json.read_text())
    assert result["delivery"]["lost"] == 0
    assert out_html.read_text().count("<svg") == 3


def test_bench_quick_runs_fanout_80_after_fanout_max(tmp_path: Path) -> None:
    argv = [
        sys.executable, "-m", "loadtest", "bench", "--quick", "--quiet", "--out", str(tmp_path),
        "--scenarios", "fanout-max,fanout-80",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (tmp_path / "bench.md").read_text()
    assert "fan-out, 80% of max" in md and "echohub ÷ socketio: delivered/s at max" in md
    results = json.loads((tmp_path / "bench.json").read_text())
    by = {r["label"]: r for r in results}
    for target in ("echohub", "socketio"):
        delivered = by[f"{target} fanout-max"]["throughput"]["delivered_per_s"]
        assert by[f"{target} fanout-80"]["params"]["rate"] == round(0.8 * delivered / 20, 2)
        assert by[f"{target} fanout-80"]["delivery"]["lost"] == 0


def check_social(r: dict[str, Any]) -> None:
    d, n = r["delivery"], r["notifications"]
    assert r["connect"]["connected"] == r["params"]["online"]
    assert d["posted"] == 40 and d["post_errors"] == 0
    assert d["expected"] > d["posted"]  # each post reaches its author and followers
    assert d["delivered"] == d["expected"]
    assert d["lost"] == 0 and d["duplicated"] == 0 and d["wrong"] == 0
    assert n["expected"] > 0 and n["delivered"] == n["expected"]
    assert n["lost"] == 0 and n["duplicated"] == 0 and n["wrong"] == 0
    assert not r["failed"]


def test_social_accounts_for_every_post_like_and_visit(
    echohub: LocalServer, tmp_path: Path
) -> None:
    kw: dict[str, Any] = {
        "scenario": "social", "members": 60, "avg_follows": 10, "rate": 20, "duration": 2,
        "like_ratio": 0.5, "visit_rate": 5, "mention_share": 0.3,
        "social_cache": str(tmp_path), "procs": 1,
    }  # fmt: skip
    first = run(config(echohub, **kw), quiet())
    check_social(first)
    assert first["setup"]["cached"] is False and first["setup"]["graph_s"] > 0
    assert first["graph"]["members"] == 60
    assert first["notifications"]["mentions"] > 0  # those the rules allow, each once
    assert first["server"]["cpu_us_per_post"] > 0 and first["rss"]["per_socket_kb"] > 0
    again = run(config(echohub, **kw), quiet())  # the same graph: from the cache
    assert again["setup"] == {"cached": True}
    check_social(again)
    # the visits of the first run were remembered: none repeated (a repeat notifies none)
    assert again["notifications"]["footprints"] > 0
    # a setup interrupted after the sign-ups resumes at the graph (edits are idempotent)
    (cache,) = tmp_path.glob("loadtest-social-60-*.json")
    saved = json.loads(cache.read_text())
    cache.write_text(json.dumps({**saved, "graph_done": False}))
    resumed = run(config(echohub, **kw), quiet())
    assert resumed["setup"]["cached"] is False and "signup_s" in resumed["setup"]
    assert "tokens" not in resumed["setup"] and "handles" not in resumed["setup"]
    check_social(resumed)
    assert json.loads(cache.read_text())["graph_done"] is True


def test_social_on_the_socketio_peer(tmp_path: Path) -> None:
    with local_server("socketio", workdir=tmp_path) as srv:
        r = run(
            config(srv, scenario="social", members=60, avg_follows=10, rate=20, duration=2,
                   like_ratio=0.5, visit_rate=5, procs=1),
            quiet(),
        )  # fmt: skip
    check_social(r)
