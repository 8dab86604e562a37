//go:build tools

// Package tools records the command that tools/k8s/build compiles from this module. It is never
// compiled itself.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
