# The Breakwater image: a static binary of the daemon and the CLI on a
# minimal base without a shell, running as a non-root user.
#
#   docker build -t breakwater:0.1.0 .
#
# The build command below is the one the README documents; a test builds
# the binaries with it and checks that they are static.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/ ./cmd/breakwater ./cmd/breakwaterctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/breakwater /src/bin/breakwaterctl /usr/local/bin/
# nonroot of the distroless base, by number so that Kubernetes can check
# runAsNonRoot without resolving a name.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/breakwater"]
CMD ["run", "--config", "/etc/breakwater/config.yaml"]
