//go:build tools

// Package tools records the command that tools/registry/build compiles, so that go.mod and go.sum
// pin it. It is never compiled itself.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
