# herald: build on Debian 12 with the distribution's libraries, run slim.
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config librdkafka-dev libcurl4-openssl-dev \
      libjson-c-dev libyaml-dev libmicrohttpd-dev libssl-dev check \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target herald herald-receiver

FROM debian:12-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libcurl4 libjson-c5 libyaml-0-2 libmicrohttpd12 libssl3 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/herald /build/herald-receiver /usr/local/bin/
COPY targets.yaml /etc/herald/targets.yaml
USER nobody
EXPOSE 8080
ENTRYPOINT ["herald"]
# The API listens on the pod network, so it needs a token: pass
# HERALD_API_TOKEN from a secret or an env file (docker run --env-file,
# Kubernetes secretKeyRef). Without one, herald refuses to start.
CMD ["run", "--api-listen", "0.0.0.0:8080"]
