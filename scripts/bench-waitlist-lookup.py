#!/usr/bin/env python3
"""How long one returned seat takes to reach the right waiter on a long list.

A show's single row of three seats is sold out; N shoppers wait for two
seats, then one shopper waits for one. One seat comes back (a release): the
script must pass over the N pairs and offer it to the last waiter. Prints
the release script's time, as Redis's own commandstats count it, for the
scripts in each lua/ directory given (e.g. this tree's and an older one),
measured in the same run against the same Redis.

  pip install redis
  python3 scripts/bench-waitlist-lookup.py --waiters 50000 lua /tmp/oldlua
"""
import argparse
import time
import uuid

import redis

PLAN = '[["A",3,""]]'


def load(r, lua_dir, name):
    with open(f"{lua_dir}/common.lua") as c, open(f"{lua_dir}/{name}") as s:
        return r.script_load(c.read() + "\n" + s.read())


def keys(prefix):
    tag = f"{prefix}{{show:s1}}"
    names = ["seats", "holds", "users", "deadlines", "gc", "version", "epoch",
             "stamps", "waiters", "waitlist", "waiters:q"]
    return [f"{tag}:{n}" for n in names], f"{tag}:events"


def run_once(r, lua_dir, waiters):
    hold, release, join = (load(r, lua_dir, n) for n in
                           ("seats_hold.lua", "seats_release.lua", "waitlist_join.lua"))
    ks, channel = keys(f"bench-{uuid.uuid4().hex[:8]}:")
    now = int(time.time() * 1000)
    common = ["s1", channel, "PUBLISH", str(now), "600000"]
    r.set(ks[6], "e1")
    r.evalsha(hold, len(ks), *ks, *common, "alice", "h1", "300000", "A1")
    r.evalsha(hold, len(ks), *ks, *common, "bob", "h2", "300000", "A2", "A3")
    pipe = r.pipeline(transaction=False)
    for i in range(waiters):
        pipe.evalsha(join, len(ks), *ks, *common, f"w{i}", "2", f"o{i}", "120000", PLAN)
        if i % 2000 == 1999:
            pipe.execute()
    pipe.evalsha(join, len(ks), *ks, *common, "carol", "1", "o-carol", "120000", PLAN)
    pipe.execute()
    r.config_resetstat()
    r.evalsha(release, len(ks), *ks, *common, "alice", "h1")
    stats = r.info("commandstats")["cmdstat_evalsha"]
    owner = r.hget(ks[0], "A1")
    assert owner == b"H:o-carol", owner
    r.delete(*ks)
    return stats["usec"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--waiters", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--url", default="redis://127.0.0.1:6379")
    ap.add_argument("lua_dirs", nargs="+")
    args = ap.parse_args()
    r = redis.Redis.from_url(args.url)
    for d in args.lua_dirs:
        times = [run_once(r, d, args.waiters) for _ in range(args.runs)]
        print(f"{d}: one returned seat past {args.waiters} waiters: "
              f"{', '.join(f'{t / 1000:.2f} ms' for t in times)} (Redis time in the script)")


if __name__ == "__main__":
    main()
