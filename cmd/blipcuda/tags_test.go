//go:build !cudaemu

package main

// buildTags are the build tags the end-to-end binary is built with: those
// of this test binary.
const buildTags = ""
