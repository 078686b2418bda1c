# syntax=docker/dockerfile:1
#
# showgate's container image: a release build of the `showgate` binary on
# Debian bookworm-slim, run as a non-root user.
#
#   docker build -t showgate .
#   docker run --rm -p 8080:8080 --ulimit nofile=131072:131072 showgate
#
# Without REDIS_URL and DATABASE_URL it runs the in-process memory engine
# with the demo catalog, as `cargo run` does. Settings: docs/configuration.md;
# running it: docs/operations.md.
#
# This machine cannot build images (no Docker engine runs here), so this file
# is checked by a test that every path it copies from the build context
# exists. The paths it COPYs from the context:
#
#   builder stage:  Cargo.toml  Cargo.lock  loadtest/Cargo.toml  build.rs
#                   src/  lua/  migrations/  loadtest/
#   runtime stage:  static/  lua/  migrations/
#
# (`COPY --from=builder` copies the binary out of the builder stage, not from
# the context.) Keep this list and the COPY lines below in step.

# ---- builder ----------------------------------------------------------------
# The toolchain this project is built and tested with.
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependencies first, in a layer of their own: this step reruns only when a
# manifest, the lockfile or build.rs changes, not on every source edit.
# loadtest/ is a workspace member, so its manifest must be present for the
# workspace (and --locked) to resolve; stub targets stand in for the sources.
COPY Cargo.toml Cargo.lock build.rs ./
COPY loadtest/Cargo.toml loadtest/Cargo.toml
RUN mkdir -p src loadtest/src migrations \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > loadtest/src/main.rs \
    && cargo build --release --locked -p showgate \
    && rm -rf src loadtest/src

# The sources. lua/ is read at compile time (include_str! in
# src/redis/scripts.rs) and migrations/ is embedded by sqlx::migrate! in
# src/postgres.rs; loadtest/ completes the workspace member.
COPY src/ src/
COPY lua/ lua/
COPY migrations/ migrations/
COPY loadtest/ loadtest/
# COPY keeps the files' own modification times, which can be older than the
# stub build above; touch the crate roots so cargo rebuilds showgate itself.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked -p showgate

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates for rediss:// and Postgres over TLS; nothing else. bash,
# grep and head (for the health check) are part of the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 showgate \
    && useradd --system --uid 10001 --gid showgate --home-dir /app \
       --no-create-home --shell /usr/sbin/nologin showgate

WORKDIR /app

COPY --from=builder /build/target/release/showgate /usr/local/bin/showgate
# The pages, served at `/`. STATIC_DIR defaults to `static`, relative to the
# working directory, which is /app.
COPY static/ /app/static/
# The Lua scripts and the migrations are compiled into the binary; these
# copies are not read by it. They ship so operators can see exactly what runs
# in Redis and what `showgate migrate` applies to Postgres.
COPY lua/ /app/lua/
COPY migrations/ /app/migrations/

ENV BIND=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080

# Liveness without curl: bash's /dev/tcp sends GET /healthz to the port the
# BIND variable names and expects a 200. (If you pass --bind as a flag
# instead, set BIND to match.) /healthz answers while the process runs;
# readiness, /readyz, is for load balancers and orchestrators, not for this.
# The start period covers `serve` migrating Postgres before it listens.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${BIND##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

USER showgate
ENTRYPOINT ["showgate"]
CMD ["serve"]
