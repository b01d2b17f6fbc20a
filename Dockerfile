# One image for every examiso service and CLI (Debian 12, as on the developers' machines):
#   docker run IMAGE examiso-gateway --config /etc/examiso/examiso.yaml
# Binaries in /usr/local/bin, configuration and exam catalog in /etc/examiso (the
# cluster's ConfigMaps are mounted over them), the web UI in /usr/share/examiso/web.
# Runs as uid 10001, never root.

# --- the C++ services and CLIs (the build packages of scripts/dev) ---
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto libabsl-dev \
      libpq-dev libseccomp-dev libyaml-cpp-dev libcpp-httplib-dev nlohmann-json3-dev libcli11-dev \
      libboost-dev libssl-dev libjwt-dev \
      libgtest-dev libgmock-dev libbenchmark-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The top-level CMakeLists.txt configures tests/ and bench/ too (not built here).
COPY CMakeLists.txt ./
COPY cmake cmake
COPY protos protos
COPY common common
COPY services services
COPY gateway gateway
COPY tests tests
COPY bench bench
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build --target \
      examiso-identity examiso-lifecycle examiso-environment examiso-access examiso-cleanup examiso-gateway \
      examiso-sandbox examiso-health \
      session-identity session-lifecycle execution-environment environment-access session-status cleanup-ttl \
 && mkdir /out \
 && for b in examiso-identity examiso-lifecycle examiso-environment examiso-access examiso-cleanup \
             examiso-gateway examiso-sandbox examiso-health session-identity session-lifecycle execution-environment \
             environment-access session-status cleanup-ttl; do \
      strip --strip-debug -o "/out/$b" "build/bin/$b"; \
    done

# --- the web UI. Vite 8 needs Node 20.19 or later; Debian 12's nodejs is 18, so this
# stage uses the Node project's own Debian 12 image. Only its output is kept. ---
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# --- what runs: the shared libraries the binaries link (libgrpc++1.51, libprotobuf32,
# libpq5, libyaml-cpp0.7, libssl3, libjwt0, cpp-httplib, libseccomp, Abseil) and tini as PID 1, which forwards
# SIGTERM and reaps. ---
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libpq5 libyaml-cpp0.7 libssl3 libjwt0 libcpp-httplib0.11 libseccomp2 \
      ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
# A name for uid 10001 (libpq and `id` look it up); no home, no shell.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin examiso
COPY --from=build /out/ /usr/local/bin/
# Fails the build when a library the binaries need is missing.
RUN ! ldd /usr/local/bin/* | grep "not found"
COPY --from=web /web/dist/ /usr/share/examiso/web/
COPY k8s/base/platform/examiso.yaml /etc/examiso/examiso.yaml
COPY k8s/base/platform/exams.yaml /etc/examiso/exams.yaml
ENV EXAMISO_CONFIG=/etc/examiso/examiso.yaml
USER 10001:10001
EXPOSE 3000 50051 50052 50053 50054 50055
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["examiso-gateway", "--config", "/etc/examiso/examiso.yaml"]
