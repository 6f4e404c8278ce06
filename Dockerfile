# The smsgate-smpp image: a static binary, CA roots and nothing else. scripts/build-image builds
# the binary (x86_64-unknown-linux-musl) and the context this file expects:
#   smsgate-smpp          the static binary
#   ca-certificates.crt   CA roots, so HTTPS to api.sms-gate.app works with nothing mounted
#   passwd, group         the unprivileged user the server runs as
#   data/                 an empty directory owned by that user, the data volume's mount point
FROM scratch

COPY passwd group /etc/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chown=10001:10001 data /data
COPY --chown=10001:10001 data /plugins
COPY smsgate-smpp /smsgate-smpp

# Inside a container every listener binds all interfaces; the admin listener stays on loopback
# (set ADMIN__ADDRESS and ADMIN__TOKEN to reach it from outside). Compiled plugins are kept on
# the data volume, so a restart skips compiling them again (the image has no /tmp).
ENV SMPP__BIND_ADDRESS=0.0.0.0:2775 \
    SMPP__TLS_BIND_ADDRESS=0.0.0.0:2776 \
    HTTP__ADDRESS=0.0.0.0:3000 \
    PLUGINS__DIR=/plugins \
    DELIVERY__DATA_DIR=/data \
    PLUGINS__CACHE_DIR=/data/plugin-cache \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

USER 10001:10001
EXPOSE 2775 2776 3000
VOLUME ["/plugins", "/data", "/certs"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["/smsgate-smpp", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/smsgate-smpp"]
CMD ["serve"]
