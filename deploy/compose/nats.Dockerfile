# NATS JetStream for Brain's docker-compose.yml: the official image, run as a non-root user, with a
# JetStream storage directory that a fresh named volume inherits (owned by uid 65532, mode 0700).
# The configuration is deploy/compose/nats.conf, mounted read-only.

FROM nats:2.15.3-alpine
RUN set -eu; \
    mkdir -p /data; \
    chown 65532:65532 /data; \
    chmod 0700 /data
USER 65532:65532
EXPOSE 4222 8222
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8222/healthz?js-enabled-only=true"]
CMD ["nats-server", "--config", "/etc/nats/brain.conf"]
