-- showgate's record: catalog, orders, booked seats, idempotency keys, outbox.
-- Redis holds the fast-moving seat locks; this database is the truth about
-- what was sold.

-- Catalog ------------------------------------------------------------------

CREATE TABLE movies (
    id               text PRIMARY KEY,
    title            text NOT NULL,
    language         text NOT NULL,
    duration_minutes integer NOT NULL CHECK (duration_minutes > 0),
    genres           text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE theatres (
    id   text PRIMARY KEY,
    name text NOT NULL,
    city text NOT NULL
);

CREATE TABLE screens (
    id          text PRIMARY KEY,
    theatre_id  text NOT NULL REFERENCES theatres (id),
    name        text NOT NULL,
    -- [{"row": "A", "seats": 14}, ...] front to back
    seat_rows   jsonb NOT NULL,
    -- seats on the map that are never sold
    unavailable text[] NOT NULL DEFAULT '{}'
);

-- Shows are partitioned by show date: listings and sale-night reads touch one
-- month's partition, and old months can be detached whole. The partition key
-- must be part of the primary key, hence (show_date, id).
CREATE TABLE shows (
    id          text NOT NULL,
    show_date   date NOT NULL,
    movie_id    text NOT NULL REFERENCES movies (id),
    theatre_id  text NOT NULL REFERENCES theatres (id),
    screen_id   text NOT NULL REFERENCES screens (id),
    start_time  timestamptz NOT NULL,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency    char(3) NOT NULL,
    PRIMARY KEY (show_date, id)
) PARTITION BY RANGE (show_date);

-- Catches any date no monthly partition covers yet.
CREATE TABLE shows_default PARTITION OF shows DEFAULT;

CREATE INDEX shows_by_id ON shows (id);
CREATE INDEX shows_by_movie_date ON shows (movie_id, show_date, start_time);

-- Creates the month's partition of `shows` if missing. Callers hold the
-- catalog advisory lock, so two nodes never race to create the same one.
CREATE FUNCTION ensure_show_partition(d date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', d)::date;
    name text := format('shows_%s', to_char(month_start, 'YYYYMM'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF shows FOR VALUES FROM (%L) TO (%L)',
                       name, month_start, (month_start + interval '1 month')::date);
    END IF;
END;
$$;

-- Orders -------------------------------------------------------------------

CREATE TABLE orders (
    id                uuid PRIMARY KEY,
    user_id           text NOT NULL,
    show_id           text NOT NULL,
    -- one order per hold: a retried POST /orders finds the first one
    hold_id           text NOT NULL UNIQUE,
    seat_ids          text[] NOT NULL CHECK (cardinality(seat_ids) > 0),
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    currency          char(3) NOT NULL,
    status            text NOT NULL CHECK (status IN
                          ('PAYMENT_PENDING', 'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED')),
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    ticket_code       text UNIQUE,
    payment_reference text,
    failure_reason    text,
    -- false from the moment a transition changes what the order owns until
    -- Redis has been told (book / release); the reconciler retries those.
    lock_synced       boolean NOT NULL DEFAULT true
);

CREATE INDEX orders_by_show_status ON orders (show_id, status);
CREATE INDEX orders_by_user_newest ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_pending_by_expiry ON orders (expires_at) WHERE status = 'PAYMENT_PENDING';
CREATE INDEX orders_unsynced ON orders (updated_at) WHERE NOT lock_synced;

-- A sold seat is a row. The primary key is the last line of defence: even if
-- a Redis lock was lost, the database refuses a second sale of a seat.
CREATE TABLE booked_seats (
    show_id   text NOT NULL,
    seat_id   text NOT NULL,
    order_id  uuid NOT NULL REFERENCES orders (id),
    booked_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT booked_seats_pkey PRIMARY KEY (show_id, seat_id)
);

CREATE INDEX booked_seats_by_order ON booked_seats (order_id);

-- Idempotency-Key: the first response to (user, key), replayed for the same
-- request and refused (422) for another.
CREATE TABLE idempotency_keys (
    user_id      text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    status       smallint NOT NULL,
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Events for other systems, written in the same transaction as the change
-- and relayed to a Redis Stream, so none is lost.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    relayed_at timestamptz
);

CREATE INDEX outbox_pending ON outbox (id) WHERE relayed_at IS NULL;
