// Package deploy holds the tests of what ships Breakwater: the container
// image's build (Dockerfile, .dockerignore) and the Helm chart under
// helm/breakwater, rendered with Helm's Go packages and checked against the
// Kubernetes API types and the daemon's own configuration loader.
//
// It is a module of its own, so that Helm and the Kubernetes libraries stay
// out of the daemon's go.mod.
package deploy
