# grayzone's container image: the static binary FROM scratch, run as the
# non-root uid 65532. Nothing is pulled from a registry.
#
# The binary is built outside (CGO off, trimmed, CA roots embedded), so build
# the image with the script, which also writes it out as an OCI archive:
#
#   deploy/image/build.sh grayzone.tar     # buildah where installed, else docker
#
# Its build context is a directory the script lays out, not the repository:
# this file, the binary (grayzone), rootfs/ (/etc/passwd and /etc/group
# naming uid 65532, and /tmp) and an empty directory, empty/.
FROM scratch
COPY rootfs/ /
# The user's home and the data directory, owned by the user.
COPY --chown=65532:65532 empty/ /home/nonroot/
COPY --chown=65532:65532 empty/ /var/lib/grayzone/
COPY grayzone /usr/local/bin/grayzone
ENV HOME=/home/nonroot
USER 65532:65532
WORKDIR /home/nonroot
# The API, dashboard, /metrics and /healthz.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/grayzone"]
CMD ["serve", "--config", "/etc/grayzone/serve.yaml", "--data-dir", "/var/lib/grayzone"]
