# One image with the `nearline` binary; every service runs from it
# (`nearline serve <service>`, `nearline migrate`, ...).

FROM rust:1-bookworm AS build
WORKDIR /src
# cmake and a C++ compiler build the bundled librdkafka statically.
RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ make && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin nearline

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/nearline --create-home nearline
COPY --from=build /src/target/release/nearline /usr/local/bin/nearline
USER nearline
WORKDIR /var/lib/nearline
ENV NEARLINE__TELEMETRY__LOG_FORMAT=json
# mimalloc must not back its pages with transparent huge pages: with THP on `madvise`
# it split and zeroed them again and again under insights' half-megabyte responses,
# tripling a busy title's CPU (services/insights/README.md, "Benchmark").
ENV MIMALLOC_ALLOW_THP=0
ENTRYPOINT ["/usr/local/bin/nearline"]
CMD ["--help"]
