-- Recovery: room configs survive a Redis data loss, and the tables that
-- only grow can be pruned by a bounded job.

-- Waiting-room configs (the Redis copy is re-seeded from here). `seed` is
-- the lottery seed, secret until the room opens.
CREATE TABLE waitrooms (
    show_id    text PRIMARY KEY,
    config     jsonb NOT NULL,
    seed       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The pruning job deletes the oldest first.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX outbox_relayed ON outbox (relayed_at) WHERE relayed_at IS NOT NULL;
