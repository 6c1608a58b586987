//go:build cudaemu

package main

// buildTags are the build tags the end-to-end binary is built with: those
// of this test binary, so that both run the emulated CUDA backend.
const buildTags = "cudaemu"
