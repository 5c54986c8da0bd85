# syntax=docker/dockerfile:1
#
# orderd in two stages: a Rust builder that compiles the default rule plugins (wasm32-wasip2,
# through host/build.rs) and the host in release mode, and a slim runtime image holding only
# the binary, which embeds the default plugins.

FROM rust:1.95-bookworm AS builder
# Use the image's own toolchain rather than whatever "stable" means today (rust-toolchain.toml).
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
RUN rustup target add wasm32-wasip2 \
 && apt-get update \
 && apt-get install -y --no-install-recommends cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p orderd \
 && install -m 0755 target/release/orderd /usr/local/bin/orderd

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/orderd --create-home orderd
COPY --from=builder /usr/local/bin/orderd /usr/local/bin/orderd
USER orderd
WORKDIR /var/lib/orderd
ENV ORDERD_DATA_DIR=/var/lib/orderd \
    ORDERD_HTTP__HOST=0.0.0.0 \
    ORDERD_HTTP__PORT=8000
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/orderd"]
CMD ["serve"]
