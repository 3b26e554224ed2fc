# Builds the eddy binary and runs `eddy server` (configure it with EDDY_* variables).
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin eddy

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libstdc++6 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/eddy /usr/local/bin/eddy
EXPOSE 8088
VOLUME /var/lib/eddy
ENTRYPOINT ["eddy", "server"]
