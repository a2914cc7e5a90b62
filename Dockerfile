# syntax=docker/dockerfile:1
# softswitch in a container: built from source in a build stage, run as a non-root user from a slim image.
#
# The build stage runs the README's install commands ("Container" section, "Install from source"), the same lines
# in the same order: test/unit/container.test.ts checks they match. Docker is not installed on the machines the
# tests run on, so that check is what keeps this file and the README honest.
#
#   docker build -t softswitch .
#   docker run --network host -v softswitch-data:/var/lib/softswitch -v ./softswitch.yaml:/etc/softswitch/softswitch.yaml:ro softswitch
#
# Host networking is the norm for SIP and media (rtpengine, coturn): no NAT between the phones and the addresses
# the softswitch writes into Via, Record-Route and SDP. compose.yaml runs the whole production set.

FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles from source when no prebuilt binary matches the platform
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund
RUN npm run build
RUN npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SOFTSWITCH_DATA_DIR=/var/lib/softswitch
# The data folder holds the SQLite file, the generated TLS key, TURN secret and chat master key: owner only.
RUN groupadd --system softswitch \
 && useradd --system --gid softswitch --home-dir /var/lib/softswitch --shell /usr/sbin/nologin softswitch \
 && install -d -m 0700 -o softswitch -g softswitch /var/lib/softswitch \
 && install -d -m 0755 /etc/softswitch
WORKDIR /opt/softswitch
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER softswitch
VOLUME ["/var/lib/softswitch"]
# SIP UDP/TCP, SIP TLS, SIP WS, SIP WSS, the embedded STUN/TURN server, the HTTP API (health, /v1, metrics)
EXPOSE 5060/udp 5060/tcp 5061/tcp 8080/tcp 8443/tcp 3478/udp 8088/tcp
# /health answers 200 while the node takes calls, 503 while it drains or a backend check fails
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8088/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/server/main.js"]
CMD ["start", "--config", "/etc/softswitch/softswitch.yaml"]
