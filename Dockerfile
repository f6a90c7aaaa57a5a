# grayzone's container image: a static binary on distroless, as a non-root user.
#
#   docker build -t grayzone .
#   docker run --rm grayzone --help
#
# Stage 1 builds with CGO off (the SQLite store is pure Go: modernc.org/sqlite),
# so the binary needs no libc and runs on distroless/static.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/grayzone ./cmd/grayzone

# Stage 2: no shell, no package manager; uid 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/grayzone /usr/local/bin/grayzone
USER 65532:65532
# The API, dashboard, /metrics and /healthz.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/grayzone"]
CMD ["serve", "--config", "/etc/grayzone/serve.yaml", "--data-dir", "/var/lib/grayzone"]
