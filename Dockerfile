# Wingman: one image with every binary (the `wingman` CLI and each `wingman-<stage>` worker);
# docker-compose.prd.yml runs each worker as its own service from it, tagged
# wingman-prd:<version>-<git revision> (scripts/image-tag; README.md "Production").
#
#   WINGMAN_REVISION=$(scripts/image-tag --revision) \
#     docker compose -f docker-compose.prd.yml -p wingman-prd --env-file .env.prd build
#
# The dependencies are compiled in a layer of their own (cargo-chef): it depends only on
# Cargo.lock and the manifests, so a change to our sources rebuilds only the workspace crates.
# The release build is the one CI also runs (`cargo build --release --workspace --bins
# --locked`). No BuildKit-only syntax, so docker-compose v1 and v2 both build it.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

# The recipe: every Cargo.toml and Cargo.lock, with the workspace crates' own versions masked
# (a version bump keeps the dependency layer). Rerun on every change; it takes a second.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# The dependency layer: reused ("Using cache") while the recipe is the same.
RUN cargo chef cook --release --workspace --bins --locked --recipe-path recipe.json
COPY . .
# The git revision `wingman_build_info` and `wingman --version` report. Declared after the
# dependency layer: a build argument changes the cache key of every RUN after it.
ARG WINGMAN_REVISION=unknown
ENV WINGMAN_REVISION=${WINGMAN_REVISION}
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
