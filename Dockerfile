# Wingman: one image with every binary (the `wingman` CLI and each `wingman-<stage>` worker);
# docker-compose.prd.yml runs each worker as its own service from it.
#
#   docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd build
#
# Build stage: the release build CI also runs (`cargo build --release --workspace --bins
# --locked`). No BuildKit-only syntax, so docker-compose v1 and v2 both build it.
FROM rust:1.95-bookworm AS build
# The git revision `wingman_build_info` reports (compose passes it: WINGMAN_REVISION in .env.prd).
ARG WINGMAN_REVISION=unknown
ENV WINGMAN_REVISION=${WINGMAN_REVISION}
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --bins --locked \
 && mkdir -p /out \
 && find target/release -maxdepth 1 -type f -executable -name 'wingman*' -exec cp {} /out/ \;

# Runtime: Debian slim, no shell tools needed: the health probe is `wingman health <url>`.
# Debian's docker-compose (v1) is the binary the gateway runs for `compose up` / `pull`, which
# the Engine API cannot express (WINGMAN_COMPOSE_BIN; argv built by the gateway, no shell).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates docker-compose \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 wingman \
 && useradd --system --uid 10001 --gid wingman --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin wingman
COPY --from=build /out/ /usr/local/bin/
COPY config/ /etc/wingman/
# Containers reach each other by name, so the ops port (/health, /metrics) listens on every
# interface inside the container; compose publishes none of the ops ports.
ENV WINGMAN_LOG_FORMAT=json \
    METRICS_HOST=0.0.0.0
# Never root. The gateway alone joins the Docker socket's group (compose `group_add`).
USER 10001:10001
CMD ["wingman", "--help"]
