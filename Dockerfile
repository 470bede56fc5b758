# Dockerfile: casetrail on Debian 12 with the same Debian packages the scripts install.
# Not testable on the development machines (no Docker engine there); kept deliberately simple.
FROM debian:12-slim AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config libcivetweb-dev libcjson-dev libpq-dev \
      libcurl4-openssl-dev libssl-dev python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY server server
COPY tests tests
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)" --target casetrail

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcivetweb1 libcjson1 libpq5 libcurl4 libssl3 ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/build/casetrail /usr/local/bin/casetrail
COPY migrations migrations
COPY web web
RUN useradd --system --no-create-home casetrail
USER casetrail
ENV CASETRAIL_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["casetrail"]
CMD ["serve"]
